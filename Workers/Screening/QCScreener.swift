import Imaging

/// Image quality control: blank/constant slices, truncated series, missing slices, uneven
/// spacing, implausible CT numbers, missing or implausible pixel/slice spacing. Findings carry
/// probability 1 (they are checks, not guesses); QC never raises urgency, and its suspicion
/// score is the fraction of checks that failed.
public struct ImageQCScreener: Screener {
    public static let screenerID = "qc.image"
    public let id = ImageQCScreener.screenerID
    public let version = "1.0.0"
    public let config: QCConfig
    /// Number of distinct checks (denominator of the score).
    public static let checkCount = 8

    public init(config: QCConfig = QCConfig()) { self.config = config }

    public func screen(_ series: PreprocessedSeries) throws -> ScreenerOutput {
        timed {
            let f = check(series)
            return (f, Double(Set(f.map(\.code)).count) / Double(ImageQCScreener.checkCount), .routine)
        }
    }

    func check(_ s: PreprocessedSeries) -> [Finding] {
        var out: [Finding] = []
        let v = s.volume
        let isCT = (s.info.modality ?? "").uppercased() == "CT"
        let unclamped = s.mapping.huMin == nil && s.mapping.huMax == nil && s.mapping.scale != 0
        let huPerUnit = abs(1 / s.mapping.scale)

        // Blank / constant slices.
        var constant: [Int] = []
        v.voxels.withUnsafeBufferPointer { p in
            for z in 0..<v.depth {
                var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
                let base = z * v.sliceCount
                for i in base..<(base + v.sliceCount) { let x = p[i]; if x < lo { lo = x }; if x > hi { hi = x } }
                if Double(hi - lo) * huPerUnit <= config.constantRangeHU { constant.append(z) }
            }
        }
        if !constant.isEmpty {
            let all = constant.count == v.depth
            out.append(Finding(code: all ? "qc.blankSeries" : "qc.constantSlices",
                               label: all ? "every slice is blank/constant" : "\(constant.count) blank/constant slice(s)",
                               probability: 1, slice: constant.first, measurements: ["count": Double(constant.count)]))
        }

        // Truncation: too few slices for a volume, or slices whose pixel data ended early.
        if v.depth < config.minSlices || s.issues.truncatedSlices > 0 {
            out.append(Finding(code: "qc.truncated",
                               label: s.issues.truncatedSlices > 0 ? "\(s.issues.truncatedSlices) slice(s) with truncated pixel data"
                                                                   : "only \(v.depth) slice(s), expected at least \(config.minSlices)",
                               probability: 1, measurements: ["slices": Double(v.depth), "truncatedSlices": Double(s.issues.truncatedSlices)]))
        }

        let g = s.geometry
        if g.missingSlices > 0 {
            out.append(Finding(code: "qc.missingSlices", label: "\(g.missingSlices) missing slice(s)", probability: 1,
                               slice: g.gaps.first?.after, measurements: ["count": Double(g.missingSlices)]))
        }
        if g.unevenSpacing || g.duplicatePositions > 0 || g.inconsistentOrientation {
            var what: [String] = []
            if g.unevenSpacing { what.append("uneven slice spacing") }
            if g.duplicatePositions > 0 { what.append("\(g.duplicatePositions) duplicate position(s)") }
            if g.inconsistentOrientation { what.append("mixed orientations") }
            out.append(Finding(code: "qc.unevenSpacing", label: what.joined(separator: ", "), probability: 1,
                               measurements: ["duplicates": Double(g.duplicatePositions)]))
        }

        // CT numbers.
        if isCT && unclamped && v.voxels.count > 0 {
            var hist = HUHistogram(lo: Int(config.ctPaddingBelowHU), hi: 6000)
            // Subsample large volumes: every 4th voxel is plenty for percentiles.
            let step = v.voxels.count > 1_000_000 ? 4 : 1
            v.voxels.withUnsafeBufferPointer { p in
                var i = 0
                while i < p.count { hist.add(s.mapping.hu(tensor: Double(p[i]))); i += step }
            }
            let padding = Double(hist.below) / Double(max(1, hist.total))
            let p1 = hist.percentile(0.01), p50 = hist.percentile(0.5), p99 = hist.percentile(0.99)
            var reasons: [String] = []
            if padding > config.ctMaxPaddingFraction { reasons.append("mostly padding") }
            if let p1, p1 > config.ctP1Max { reasons.append("no air") }
            if let p50, p50 > config.ctP50Max { reasons.append("median too high") }
            if let p99, p99 > config.ctP99Max || hist.above > hist.total / 100 { reasons.append("too many very high values") }
            if p1 == nil && padding <= config.ctMaxPaddingFraction { reasons.append("no values in range") }
            if !reasons.isEmpty && constant.count != v.depth {
                out.append(Finding(code: "qc.implausibleHU", label: "implausible CT numbers: " + reasons.joined(separator: ", "),
                                   probability: 1, measurements: ["p1": p1 ?? .nan, "p50": p50 ?? .nan, "p99": p99 ?? .nan, "paddingFraction": padding]
                                    .filter { $0.value.isFinite }))
            }
        }

        // Spacing.
        let ps = s.geometry.pixelSpacing
        if s.issues.missingPixelSpacing || ps == nil {
            out.append(Finding(code: "qc.missingPixelSpacing", label: "pixel spacing missing or invalid", probability: 1))
        } else if let ps, ps.contains(where: { $0 < config.pixelSpacingMinMM || $0 > config.pixelSpacingMaxMM }) {
            out.append(Finding(code: "qc.implausiblePixelSpacing", label: "pixel spacing outside plausible range", probability: 1,
                               measurements: ["rowSpacing": ps[0], "columnSpacing": ps.count > 1 ? ps[1] : ps[0]]))
        }
        if v.depth > 1 {
            if let z = v.spacing.z, z > 0, z <= config.sliceSpacingMaxMM {
                // fine
            } else {
                out.append(Finding(code: "qc.sliceSpacing", label: "slice spacing missing or implausible", probability: 1,
                                   measurements: v.spacing.z.map { ["sliceSpacing": $0] } ?? [:]))
            }
        }
        return out
    }
}

/// HU thresholds moved into a series' tensor space, refusing mappings where that is not exact.
struct TensorScale {
    let mapping: IntensityMapping
    init(_ m: IntensityMapping, needs hu: [Double]) throws {
        guard m.scale > 0 else { throw ScreeningError.invalidInput("screener needs a non-inverted intensity mapping") }
        for h in hu {
            if let lo = m.huMin, h < lo { throw ScreeningError.invalidInput("tensor clamps HU below \(lo); screener needs \(h)") }
            if let hi = m.huMax, h > hi { throw ScreeningError.invalidInput("tensor clamps HU above \(hi); screener needs \(h)") }
        }
        mapping = m
    }
    @inline(__always) func t(_ hu: Double) -> Float { Float(hu * mapping.scale + mapping.offset) }
    @inline(__always) func hu(_ t: Double) -> Double { mapping.hu(tensor: t) }
}
