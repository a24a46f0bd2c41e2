import DICOM
import Imaging
import RadGridCore

/// Sensitivity / specificity / AUC of one screener on a seeded synthetic set.
public struct ValidationMetrics: Sendable, Codable, Equatable {
    public var screener: String
    public var series: Int
    public var positives: Int
    public var truePositives: Int
    public var falsePositives: Int
    public var trueNegatives: Int
    public var falseNegatives: Int
    public var sensitivity: Double
    public var specificity: Double
    public var auc: Double
    /// Screener run time only (generation and preprocessing excluded).
    public var msPerSeries: Double
    /// Phantom generation + preprocessing, for context.
    public var prepMsPerSeries: Double
}

/// Defects the QC validation injects into clean phantoms.
public enum QCDefect: String, Sendable, Codable, CaseIterable {
    case blankSlice, missingSlices, unevenSpacing, missingPixelSpacing, wrongRescale, truncatedSeries, truncatedPixelData, implausiblePixelSpacing
}

public enum Validation {
    /// Area under the ROC curve (Mann-Whitney U, ties count one half).
    public static func auc(_ samples: [(score: Double, positive: Bool)]) -> Double {
        let pos = samples.filter(\.positive).map(\.score), neg = samples.filter { !$0.positive }.map(\.score)
        guard !pos.isEmpty, !neg.isEmpty else { return .nan }
        // Rank-based: sort all, average ranks of ties.
        let all = samples.enumerated().sorted { $0.element.score < $1.element.score }
        var ranks = [Double](repeating: 0, count: all.count)
        var i = 0
        while i < all.count {
            var j = i
            while j + 1 < all.count && all[j + 1].element.score == all[i].element.score { j += 1 }
            let r = Double(i + j) / 2 + 1
            for k in i...j { ranks[k] = r }
            i = j + 1
        }
        var rankSum = 0.0
        for (k, e) in all.enumerated() where e.element.positive { rankSum += ranks[k] }
        let np = Double(pos.count), nn = Double(neg.count)
        return (rankSum - np * (np + 1) / 2) / (np * nn)
    }

    /// The phantom for case `index` of a validation set: even indices carry a lesion whose
    /// size (and contrast, inside the generator) is drawn at random. `hard` selects the harder
    /// generator (its own geometry, so `small` has no effect then).
    public static func lesionCase(kind: PhantomSpec.Kind, index: Int, seed: UInt64, small: Bool = false, hard: Bool = false) -> (PhantomSpec, Bool) {
        var rng = Xoshiro256(seed: seed &+ UInt64(index) &* 0x9E37_79B9)
        let positive = index % 2 == 0
        var spec = small ? PhantomSpec.small(kind) : PhantomSpec(kind: kind)
        spec.hard = hard
        spec.seed = rng.next()
        if positive {
            spec.lesionDiameterMM = kind == .head ? rng.uniform(3, 22) : rng.uniform(3, 16)
        }
        return (spec, positive)
    }

    /// A clean phantom, and for odd indices one injected defect.
    public static func qcCase(index: Int, seed: UInt64, small: Bool = false) -> (Phantom, QCDefect?) {
        var rng = Xoshiro256(seed: seed &+ UInt64(index) &* 0x9E37_79B9 &+ 17)
        let kind: PhantomSpec.Kind = rng.chance(0.5) ? .head : .chest
        var spec = small ? PhantomSpec.small(kind) : PhantomSpec(kind: kind)
        if !small { spec.width = 96; spec.height = 96; spec.pixelSpacing *= 160.0 / 96.0 }
        spec.seed = rng.next()
        var p = Phantom.generate(spec)
        guard index % 2 == 1 else { return (p, nil) }
        let defect = QCDefect.allCases[Int(rng.uniform(0, Double(QCDefect.allCases.count)))]
        inject(defect, into: &p, rng: &rng)
        return (p, defect)
    }

    public static func inject(_ defect: QCDefect, into p: inout Phantom, rng: inout Xoshiro256) {
        let n = p.slices.count
        let mid = n / 2
        switch defect {
        case .blankSlice:
            let s = p.slices[mid]
            p.slices[mid].pixels = .int16([Int16](repeating: 0, count: s.rows * s.columns))
        case .missingSlices:
            let k = 1 + Int(rng.uniform(0, 3))
            p.slices.removeSubrange(mid..<min(n - 1, mid + k))
        case .unevenSpacing:
            let j = rng.uniform(0.2, 2.0) * (rng.chance(0.5) ? 1 : -1)
            p.slices[mid].header.imagePosition?[2] += j
        case .missingPixelSpacing:
            for i in 0..<n { p.slices[i].header.pixelSpacing = nil }
        case .wrongRescale:
            for i in 0..<n { p.slices[i].modalityLUT = ModalityLUT(slope: 1, intercept: 0) }
        case .truncatedSeries:
            let keep = 3 + Int(rng.uniform(0, 6))
            p.slices.removeSubrange(keep..<n)
        case .truncatedPixelData:
            p.slices[mid].truncated = true
            if case .int16(var a) = p.slices[mid].pixels {
                for i in (a.count * 6 / 10)..<a.count { a[i] = 0 }
                p.slices[mid].pixels = .int16(a)
            }
        case .implausiblePixelSpacing:
            let v = rng.chance(0.5) ? 0.01 : 12.0
            for i in 0..<n { p.slices[i].header.pixelSpacing = [v, v] }
        }
    }

    /// Runs one screener over `count` seeded cases and scores it against the ground truth.
    /// `hard` runs the lesion screeners on the hard phantom set (QC cases are unaffected).
    public static func run(screenerID: String, count: Int, seed: UInt64, config: ScreeningConfig = .default, small: Bool = false, hard: Bool = false,
                           onCase: ((_ index: Int, _ positive: Bool, _ output: ScreenerOutput, _ note: String) -> Void)? = nil) throws -> ValidationMetrics {
        let screener = try config.makeScreener(screenerID)
        var samples: [(score: Double, positive: Bool)] = []
        var tp = 0, fp = 0, tn = 0, fn = 0
        var screenMs = 0.0, prepMs = 0.0
        for i in 0..<count {
            let t0 = WallClock.monotonicNanoseconds()
            let series: PreprocessedSeries
            let positive: Bool
            var note = ""
            switch screenerID {
            case ImageQCScreener.screenerID:
                let (p, defect) = qcCase(index: i, seed: seed, small: small)
                series = try p.preprocessed()
                positive = defect != nil
                note = defect?.rawValue ?? "clean"
            case HeadHyperdensityScreener.screenerID, ChestNoduleScreener.screenerID:
                let kind: PhantomSpec.Kind = screenerID == HeadHyperdensityScreener.screenerID ? .head : .chest
                let (spec, pos) = lesionCase(kind: kind, index: i, seed: seed, small: small, hard: hard)
                let phantom = Phantom.generate(spec)
                series = try phantom.preprocessed()
                positive = pos
                note = "lesion \(phantom.lesions.map { "d=\(Int($0.diameterMM)) hu=\(Int($0.hu))" }) mimics \(phantom.mimicsPlaced)"
            default:
                throw ScreeningError.config("no validation set for '\(screenerID)'")
            }
            prepMs += Double(WallClock.monotonicNanoseconds() - t0) / 1e6
            let out = try screener.screen(series)
            screenMs += out.runTimeMs
            onCase?(i, positive, out, note)
            let flagged = !out.findings.isEmpty
            samples.append((out.suspicionScore, positive))
            switch (positive, flagged) {
            case (true, true): tp += 1
            case (true, false): fn += 1
            case (false, true): fp += 1
            case (false, false): tn += 1
            }
        }
        let pos = tp + fn, neg = tn + fp
        return ValidationMetrics(screener: screenerID, series: count, positives: pos, truePositives: tp, falsePositives: fp,
                                 trueNegatives: tn, falseNegatives: fn,
                                 sensitivity: pos > 0 ? Double(tp) / Double(pos) : .nan,
                                 specificity: neg > 0 ? Double(tn) / Double(neg) : .nan,
                                 auc: auc(samples), msPerSeries: screenMs / Double(max(1, count)), prepMsPerSeries: prepMs / Double(max(1, count)))
    }
}
