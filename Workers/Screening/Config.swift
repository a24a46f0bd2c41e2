import Imaging

/// Thresholds for `ImageQCScreener`.
public struct QCConfig: Sendable, Codable, Equatable {
    /// Fewer slices than this (volumetric CT/MR) reads as a truncated series.
    public var minSlices: Int = 10
    /// A slice whose HU range is at most this is blank/constant.
    public var constantRangeHU: Double = 1
    /// CT: values below this are pixel padding, not tissue.
    public var ctPaddingBelowHU: Double = -1500
    /// CT plausibility on non-padding voxels: 1st percentile must be below `ctP1Max` (there is
    /// air in any CT), the median below `ctP50Max`, the 99th percentile below `ctP99Max`.
    public var ctP1Max: Double = -500
    public var ctP50Max: Double = 1500
    public var ctP99Max: Double = 4000
    /// More than this fraction of padding voxels is implausible.
    public var ctMaxPaddingFraction: Double = 0.6
    public var pixelSpacingMinMM: Double = 0.05
    public var pixelSpacingMaxMM: Double = 5
    public var sliceSpacingMaxMM: Double = 20
    public init() {}
}

/// Thresholds for `HeadHyperdensityScreener` (all HU unless named otherwise).
public struct HeadHyperdensityConfig: Sendable, Codable, Equatable {
    /// Bone (skull) threshold used to find the intracranial space.
    public var boneHU: Double = 300
    /// Intracranial voxels below this are not brain (air, fat).
    public var brainMinHU: Double = -30
    /// Brain mask erosion away from the skull, in mm (skull partial volume lands in 50-90 HU).
    public var erodeMM: Double = 4.5
    /// Candidate band on the 3x3 in-plane mean.
    public var candidateMinHU: Double = 50
    public var candidateMaxHU: Double = 90
    /// Components containing a voxel above this are calcifications, not blood.
    public var calcificationHU: Double = 120
    /// Components smaller than this are not reported.
    public var minVolumeML: Double = 0.05
    /// Logistic score: logit = volumeWeight * ln(volume / volumeAtHalfML) + contrastWeight * (meanHU - meanHUAtHalf).
    public var volumeAtHalfML: Double = 0.12
    public var volumeWeight: Double = 1.6
    public var meanHUAtHalf: Double = 55
    public var contrastWeight: Double = 0.12
    /// Bounding-box diagonal / equivalent diameter above this is sheet- or tube-like (falx,
    /// venous sinus); each unit above costs `elongationWeight` logits.
    public var maxElongation: Double = 2.4
    public var elongationWeight: Double = 4
    /// Findings at or above this probability are reported; the series is then critical.
    public var findingProbability: Double = 0.5
    public init() {}
}

/// Thresholds for `ChestNoduleScreener`.
public struct ChestNoduleConfig: Sendable, Codable, Equatable {
    /// Lung parenchyma: 3x3 in-plane mean below this, enclosed by the body.
    public var lungMaxHU: Double = -650
    /// Components outside this equivalent-diameter range are ignored (mm).
    public var minDiameterMM: Double = 3
    public var maxDiameterMM: Double = 40
    /// Bounding-box diagonal / equivalent diameter above this is vessel-like.
    public var maxElongation: Double = 2.2
    /// Logistic score: logit = diameterWeight * (min(d, diameterCapMM) - diameterAtHalfMM)
    ///   + densityWeight * (peakHU - peakHUAtHalf) - elongationWeight * max(0, elongation - maxElongation),
    /// peakHU being the highest 3x3 in-plane mean inside the component.
    public var diameterAtHalfMM: Double = 6
    public var diameterCapMM: Double = 10
    public var diameterWeight: Double = 0.4
    public var peakHUAtHalf: Double = -300
    public var densityWeight: Double = 0.04
    public var elongationWeight: Double = 6
    /// Components more elongated than `maxElongation + elongationRejectMargin` are dropped.
    public var elongationRejectMargin: Double = 0.6
    public var findingProbability: Double = 0.5
    /// A reported nodule at least this large makes the series urgent.
    public var urgentDiameterMM: Double = 15
    public init() {}
}

/// Which screeners run on which series, and their thresholds. Defaults live here; deployments
/// override them with `Ops/screening.json` (same shape; absent sections keep the defaults).
public struct ScreeningConfig: Sendable, Codable, Equatable {
    public struct Rule: Sendable, Codable, Equatable {
        /// Modality (e.g. "CT"); "*" matches any.
        public var modality: String
        /// Body Part Examined values (case-insensitive); empty matches any.
        public var bodyParts: [String]
        public var screeners: [String]

        public init(modality: String, bodyParts: [String], screeners: [String]) {
            self.modality = modality
            self.bodyParts = bodyParts
            self.screeners = screeners
        }

        public func matches(_ info: SeriesInfo) -> Bool {
            if modality != "*" && modality.uppercased() != (info.modality ?? "").uppercased() { return false }
            if bodyParts.isEmpty { return true }
            let part = (info.bodyPart ?? "").uppercased()
            return bodyParts.contains { $0.uppercased() == part }
        }
    }

    public var rules: [Rule]
    public var qc: QCConfig
    public var headHyperdensity: HeadHyperdensityConfig
    public var chestNodule: ChestNoduleConfig

    public init(rules: [Rule] = ScreeningConfig.defaultRules, qc: QCConfig = QCConfig(),
                headHyperdensity: HeadHyperdensityConfig = HeadHyperdensityConfig(), chestNodule: ChestNoduleConfig = ChestNoduleConfig()) {
        self.rules = rules
        self.qc = qc
        self.headHyperdensity = headHyperdensity
        self.chestNodule = chestNodule
    }

    public static let defaultRules: [Rule] = [
        Rule(modality: "*", bodyParts: [], screeners: [ImageQCScreener.screenerID]),
        Rule(modality: "CT", bodyParts: ["HEAD", "BRAIN", "SKULL"], screeners: [HeadHyperdensityScreener.screenerID]),
        Rule(modality: "CT", bodyParts: ["CHEST", "LUNG", "THORAX"], screeners: [ChestNoduleScreener.screenerID]),
    ]

    public static let `default` = ScreeningConfig()

    enum CodingKeys: String, CodingKey { case rules, qc, headHyperdensity, chestNodule }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rules = try c.decodeIfPresent([Rule].self, forKey: .rules) ?? ScreeningConfig.defaultRules
        qc = try c.decodeIfPresent(QCConfig.self, forKey: .qc) ?? QCConfig()
        headHyperdensity = try c.decodeIfPresent(HeadHyperdensityConfig.self, forKey: .headHyperdensity) ?? HeadHyperdensityConfig()
        chestNodule = try c.decodeIfPresent(ChestNoduleConfig.self, forKey: .chestNodule) ?? ChestNoduleConfig()
    }

    /// Screener ids for a series, in rule order, without duplicates.
    public func screenerIDs(for info: SeriesInfo) -> [String] {
        var ids: [String] = []
        for r in rules where r.matches(info) { for s in r.screeners where !ids.contains(s) { ids.append(s) } }
        return ids
    }

    /// Builds a screener by id with this configuration's thresholds.
    public func makeScreener(_ id: String) throws -> any Screener {
        switch id {
        case ImageQCScreener.screenerID: return ImageQCScreener(config: qc)
        case HeadHyperdensityScreener.screenerID: return HeadHyperdensityScreener(config: headHyperdensity)
        case ChestNoduleScreener.screenerID: return ChestNoduleScreener(config: chestNodule)
        default: throw ScreeningError.config("unknown screener id '\(id)'")
        }
    }

    /// Checks every rule names a known screener.
    public func validate() throws {
        for r in rules { for s in r.screeners { _ = try makeScreener(s) } }
    }
}

/// Picks the configured screeners for each series and merges their outputs.
public struct ScreeningEngine: Sendable {
    public var config: ScreeningConfig

    public init(config: ScreeningConfig = .default) { self.config = config }

    public func screeners(for info: SeriesInfo) throws -> [any Screener] {
        try config.screenerIDs(for: info).map { try config.makeScreener($0) }
    }

    public func run(_ series: PreprocessedSeries) throws -> ScreeningResult {
        let outputs = try screeners(for: series.info).map { try $0.screen(series) }
        return ScreeningResult(seriesInstanceUID: series.info.seriesInstanceUID, modality: series.info.modality,
                               bodyPart: series.info.bodyPart, outputs: outputs)
    }

    /// The same as `run(_:)`, each screener in its own child task (they only read the series):
    /// a study's screening is on its critical path, and the machine has more than one core.
    public func runConcurrently(_ series: PreprocessedSeries) async throws -> ScreeningResult {
        let screeners = try screeners(for: series.info)
        let outputs = try await withThrowingTaskGroup(of: (Int, ScreenerOutput).self) { group in
            for (index, screener) in screeners.enumerated() { group.addTask { (index, try screener.screen(series)) } }
            var outputs = [ScreenerOutput?](repeating: nil, count: screeners.count)
            for try await (index, output) in group { outputs[index] = output }
            return outputs.map { $0! }
        }
        return ScreeningResult(seriesInstanceUID: series.info.seriesInstanceUID, modality: series.info.modality,
                               bodyPart: series.info.bodyPart, outputs: outputs)
    }

    /// Several series at once: series sharing a screener are handed to it as one batch.
    public func run(batch: [PreprocessedSeries]) throws -> [ScreeningResult] {
        var perSeries: [[ScreenerOutput]] = Array(repeating: [], count: batch.count)
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for (i, s) in batch.enumerated() {
            for id in config.screenerIDs(for: s.info) {
                if groups[id] == nil { order.append(id) }
                groups[id, default: []].append(i)
            }
        }
        for id in order {
            let idx = groups[id]!
            let outs = try config.makeScreener(id).screen(batch: idx.map { batch[$0] })
            for (k, i) in idx.enumerated() { perSeries[i].append(outs[k]) }
        }
        return batch.enumerated().map { i, s in
            // Keep rule order within a series.
            let ids = config.screenerIDs(for: s.info)
            let outs = perSeries[i].sorted { (ids.firstIndex(of: $0.screenerID) ?? 0) < (ids.firstIndex(of: $1.screenerID) ?? 0) }
            return ScreeningResult(seriesInstanceUID: s.info.seriesInstanceUID, modality: s.info.modality, bodyPart: s.info.bodyPart, outputs: outs)
        }
    }
}
