import Imaging

/// CT head: connected regions of roughly acute-blood density (default 50-90 HU on a 3x3
/// in-plane mean) inside the eroded intracranial mask, above a size threshold. Calcification
/// (any voxel above `calcificationHU`) is rejected. A rule-based detector for triage, not a
/// diagnosis: it flags candidate hyperdensities for a radiologist to look at first.
public struct HeadHyperdensityScreener: Screener {
    public static let screenerID = "ct.head.hyperdensity"
    public let id = HeadHyperdensityScreener.screenerID
    public let version = "1.0.0"
    public let config: HeadHyperdensityConfig

    public init(config: HeadHyperdensityConfig = HeadHyperdensityConfig()) { self.config = config }

    public func screen(_ series: PreprocessedSeries) throws -> ScreenerOutput {
        let c = config
        let ts = try TensorScale(series.mapping, needs: [c.boneHU, c.brainMinHU, c.candidateMinHU, c.candidateMaxHU, c.calcificationHU])
        return try timed {
            let v = series.volume
            let w = v.width, h = v.height, d = v.depth, n = w * h * d, sn = w * h
            guard d > 0 else { throw ScreeningError.invalidInput("empty volume") }
            let sx = v.spacing.x ?? 1, sy = v.spacing.y ?? 1, sz = v.spacing.z ?? 1
            let voxelML = sx * sy * sz / 1000
            let erodePx = max(0, Int((c.erodeMM / min(sx, sy)).rounded()))
            let bone = ts.t(c.boneHU), brainMin = ts.t(c.brainMinHU), lo = ts.t(c.candidateMinHU), hi = ts.t(c.candidateMaxHU)

            var brain = [UInt8](repeating: 0, count: n)
            var smooth = [Float](repeating: 0, count: n)
            var passable = [UInt8](repeating: 0, count: sn)
            var reached = [UInt8](repeating: 0, count: sn)
            var ops = SliceOps(width: w, height: h)
            v.voxels.withUnsafeBufferPointer { vox in
                brain.withUnsafeMutableBufferPointer { br in
                    smooth.withUnsafeMutableBufferPointer { sm in
                        passable.withUnsafeMutableBufferPointer { pa in
                            reached.withUnsafeMutableBufferPointer { re in
                                for z in 0..<d {
                                    let base = z * sn
                                    for i in 0..<sn { pa[i] = vox[base + i] < bone ? 1 : 0 }
                                    ops.fillFromBorder(passable: UnsafeBufferPointer(pa), reached: re)
                                    for i in 0..<sn {
                                        let x = vox[base + i]
                                        br[base + i] = (re[i] == 0 && x < bone && x >= brainMin) ? 1 : 0
                                    }
                                    ops.erode(UnsafeMutableBufferPointer(rebasing: br[base..<(base + sn)]), radius: erodePx)
                                    ops.boxSmooth3(UnsafeBufferPointer(rebasing: vox[base..<(base + sn)]),
                                                   into: UnsafeMutableBufferPointer(rebasing: sm[base..<(base + sn)]))
                                }
                            }
                        }
                    }
                }
            }
            // Candidates: inside the brain on this slice and both neighbours (keeps away from
            // the skull cap cut tangentially), smoothed value in the blood band.
            var cand = [UInt8](repeating: 0, count: n)
            var brainVoxels = 0
            var bcx = 0.0
            for z in 0..<d {
                for i in 0..<sn {
                    let k = z * sn + i
                    if brain[k] != 0 { brainVoxels += 1; bcx += Double(i % w) }
                    guard z > 0, z < d - 1, brain[k] != 0, brain[k - sn] != 0, brain[k + sn] != 0 else { continue }
                    let s = smooth[k]
                    if s >= lo && s <= hi { cand[k] = 1 }
                }
            }
            let midlineX = brainVoxels > 0 ? bcx / Double(brainVoxels) : Double(w) / 2
            var cc = ConnectedComponents3D(width: w, height: h, depth: d)
            let comps = cand.withUnsafeBufferPointer { m in v.voxels.withUnsafeBufferPointer { cc.label(mask: m, values: $0) } }

            var findings: [Finding] = []
            var score = 0.0
            for comp in comps {
                if ts.hu(Double(comp.maxValue)) > c.calcificationHU { continue }
                let vol = Double(comp.count) * voxelML
                let meanHU = ts.hu(comp.mean)
                let ex = Double(comp.maxX - comp.minX + 1) * sx, ey = Double(comp.maxY - comp.minY + 1) * sy
                let ez = Double(comp.maxZ - comp.minZ + 1) * sz
                let elongation = (ex * ex + ey * ey + ez * ez).squareRoot() / cbrt(6 * vol * 1000 / Double.pi)
                let logit = c.volumeWeight * log(vol / c.volumeAtHalfML) + c.contrastWeight * (meanHU - c.meanHUAtHalf)
                    - c.elongationWeight * max(0, elongation - c.maxElongation)
                let p = sigmoid(logit)
                score = max(score, p)
                guard vol >= c.minVolumeML, p >= c.findingProbability else { continue }
                let cen = comp.centroid
                // LPS: +x (increasing column) is patient left, +y (increasing row) posterior.
                let side = cen.x >= midlineX ? "left" : "right"
                let ap = cen.y < Double(h) / 2 ? "anterior" : "posterior"
                findings.append(Finding(code: "ct.head.hyperdensity",
                                        label: "hyperdense region \(side) \(ap), \(format1(vol)) mL",
                                        probability: p, slice: Int(cen.z.rounded()), boundingBox: comp.box,
                                        measurements: ["volume_ml": vol, "mean_hu": meanHU, "voxels": Double(comp.count), "elongation": elongation]))
            }
            findings.sort { $0.probability > $1.probability }
            return (findings, score, findings.isEmpty ? .routine : .critical)
        }
    }
}

/// One decimal, without Foundation.
func format1(_ x: Double) -> String {
    let r = (x * 10).rounded() / 10
    let i = Int(r)
    let f = Int((abs(r - Double(i)) * 10).rounded())
    return (r < 0 && i == 0 ? "-" : "") + "\(i).\(f)"
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
