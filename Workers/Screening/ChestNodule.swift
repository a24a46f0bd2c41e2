import Imaging

/// CT chest: compact soft-tissue-density blobs enclosed by aerated lung. Per slice the lung is
/// the low-density (3x3 mean below `lungMaxHU`) region not connected to the air around the
/// body; candidates are the non-lung holes enclosed by lung. 3D components are scored by
/// equivalent diameter and penalised when elongated (vessels). Juxtapleural and
/// vessel-attached nodules are not holes and are missed by design.
public struct ChestNoduleScreener: Screener {
    public static let screenerID = "ct.chest.nodule"
    public let id = ChestNoduleScreener.screenerID
    public let version = "1.0.0"
    public let config: ChestNoduleConfig

    public init(config: ChestNoduleConfig = ChestNoduleConfig()) { self.config = config }

    public func screen(_ series: PreprocessedSeries) throws -> ScreenerOutput {
        let c = config
        let ts = try TensorScale(series.mapping, needs: [c.lungMaxHU])
        return try timed {
            let v = series.volume
            let w = v.width, h = v.height, d = v.depth, n = w * h * d, sn = w * h
            guard d > 0 else { throw ScreeningError.invalidInput("empty volume") }
            let sx = v.spacing.x ?? 1, sy = v.spacing.y ?? 1, sz = v.spacing.z ?? 1
            let voxelMM3 = sx * sy * sz
            let lungMax = ts.t(c.lungMaxHU)

            var cand = [UInt8](repeating: 0, count: n)
            var smooth = [Float](repeating: 0, count: n)
            var air = [UInt8](repeating: 0, count: sn)
            var outside = [UInt8](repeating: 0, count: sn)
            var notLung = [UInt8](repeating: 0, count: sn)
            var ops = SliceOps(width: w, height: h)
            v.voxels.withUnsafeBufferPointer { vox in
                cand.withUnsafeMutableBufferPointer { ca in
                    smooth.withUnsafeMutableBufferPointer { sm in
                        air.withUnsafeMutableBufferPointer { ai in
                            outside.withUnsafeMutableBufferPointer { ou in
                                notLung.withUnsafeMutableBufferPointer { nl in
                                    for z in 0..<d {
                                        let base = z * sn
                                        ops.boxSmooth3(UnsafeBufferPointer(rebasing: vox[base..<(base + sn)]),
                                                       into: UnsafeMutableBufferPointer(rebasing: sm[base..<(base + sn)]))
                                        for i in 0..<sn { ai[i] = sm[base + i] < lungMax ? 1 : 0 }
                                        ops.fillFromBorder(passable: UnsafeBufferPointer(ai), reached: ou)
                                        // not lung = not (air inside the body)
                                        for i in 0..<sn { nl[i] = (ai[i] != 0 && ou[i] == 0) ? 0 : 1 }
                                        ops.fillFromBorder(passable: UnsafeBufferPointer(nl), reached: ou)
                                        for i in 0..<sn { ca[base + i] = (nl[i] != 0 && ou[i] == 0) ? 1 : 0 }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var cc = ConnectedComponents3D(width: w, height: h, depth: d)
            // Statistics on the smoothed values: the peak of a solid nodule survives the 3x3 mean,
            // the partial-volume peak of a thin vessel does not.
            let comps = cand.withUnsafeBufferPointer { m in smooth.withUnsafeBufferPointer { cc.label(mask: m, values: $0) } }

            var findings: [Finding] = []
            var score = 0.0
            var urgency = Urgency.routine
            for comp in comps {
                let vol = Double(comp.count) * voxelMM3
                let diameter = cbrt(6 * vol / Double.pi)
                guard diameter >= c.minDiameterMM, diameter <= c.maxDiameterMM else { continue }
                let ex = Double(comp.maxX - comp.minX + 1) * sx, ey = Double(comp.maxY - comp.minY + 1) * sy
                let ez = Double(comp.maxZ - comp.minZ + 1) * sz
                let elongation = (ex * ex + ey * ey + ez * ez).squareRoot() / diameter
                // Clearly tubular or branching: a vessel, whatever its density.
                if elongation > c.maxElongation + c.elongationRejectMargin { continue }
                let meanHU = ts.hu(comp.mean), peakHU = ts.hu(Double(comp.maxValue))
                let logit = c.diameterWeight * (min(diameter, c.diameterCapMM) - c.diameterAtHalfMM) + c.densityWeight * (peakHU - c.peakHUAtHalf)
                    - c.elongationWeight * max(0, elongation - c.maxElongation)
                let p = sigmoid(logit)
                score = max(score, p)
                guard p >= c.findingProbability else { continue }
                let cen = comp.centroid
                let side = cen.x >= Double(w) / 2 ? "left" : "right"
                findings.append(Finding(code: "ct.chest.nodule", label: "nodule candidate \(side) lung, \(format1(diameter)) mm",
                                        probability: p, slice: Int(cen.z.rounded()), boundingBox: comp.box,
                                        measurements: ["diameter_mm": diameter, "volume_mm3": vol, "mean_hu": meanHU, "peak_hu": peakHU,
                                                       "elongation": elongation]))
                if diameter >= c.urgentDiameterMM { urgency = .urgent }
            }
            findings.sort { $0.probability > $1.probability }
            return (findings, score, urgency)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
