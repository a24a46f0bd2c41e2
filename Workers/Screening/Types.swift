import GridContract
import Imaging
import RadGridCore

/// How soon a human should look at a series: the grid's own `Urgency`, so a screen's verdict
/// travels to the coordinator and the router without mapping.
public typealias Urgency = GridContract.Urgency

/// Voxel-index bounding box (inclusive), in the preprocessed volume's sorted slice order.
public struct BoundingBox: Sendable, Codable, Equatable {
    public var x0: Int, y0: Int, z0: Int
    public var x1: Int, y1: Int, z1: Int

    public init(x0: Int, y0: Int, z0: Int, x1: Int, y1: Int, z1: Int) {
        self.x0 = x0; self.y0 = y0; self.z0 = z0
        self.x1 = x1; self.y1 = y1; self.z1 = z1
    }
}

/// One thing a screener found.
public struct Finding: Sendable, Codable, Equatable {
    /// Stable code, e.g. `ct.head.hyperdensity`, `qc.missingSlices`.
    public var code: String
    /// Short description for the worklist (no patient data).
    public var label: String
    /// 0...1.
    public var probability: Double
    /// Representative slice (index in sorted order), if the finding is localised.
    public var slice: Int?
    public var boundingBox: BoundingBox?
    /// Measurements (volume_ml, diameter_mm, mean_hu, count, ...).
    public var measurements: [String: Double]

    public init(code: String, label: String, probability: Double, slice: Int? = nil, boundingBox: BoundingBox? = nil,
                measurements: [String: Double] = [:]) {
        self.code = code
        self.label = label
        self.probability = probability
        self.slice = slice
        self.boundingBox = boundingBox
        self.measurements = measurements
    }
}

/// What one screener said about one series.
public struct ScreenerOutput: Sendable, Codable, Equatable {
    public var screenerID: String
    public var screenerVersion: String
    public var findings: [Finding]
    /// 0...1, monotone in the screener's confidence that something needs attention.
    public var suspicionScore: Double
    public var urgency: Urgency
    public var runTimeMs: Double
    /// Set when the screener is a model: which file exactly.
    public var model: ModelProvenance?

    public init(screenerID: String, screenerVersion: String, findings: [Finding], suspicionScore: Double, urgency: Urgency, runTimeMs: Double = 0,
                model: ModelProvenance? = nil) {
        self.screenerID = screenerID
        self.screenerVersion = screenerVersion
        self.findings = findings
        self.suspicionScore = suspicionScore
        self.urgency = urgency
        self.runTimeMs = runTimeMs
        self.model = model
    }
}

/// Everything the pre-screen stage says about one series; stored as JSON with the study.
public struct ScreeningResult: Sendable, Codable, Equatable {
    public var seriesInstanceUID: String?
    public var modality: String?
    public var bodyPart: String?
    /// The highest urgency any screener recommended.
    public var urgency: Urgency
    /// The highest suspicion score of any clinical screener (QC excluded).
    public var score: Double
    public var findings: [Finding]
    public var outputs: [ScreenerOutput]

    public init(seriesInstanceUID: String?, modality: String?, bodyPart: String?, outputs: [ScreenerOutput]) {
        self.seriesInstanceUID = seriesInstanceUID
        self.modality = modality
        self.bodyPart = bodyPart
        self.outputs = outputs
        urgency = outputs.map(\.urgency).max() ?? .routine
        score = outputs.filter { !$0.screenerID.hasPrefix("qc") }.map(\.suspicionScore).max() ?? 0
        findings = outputs.flatMap(\.findings)
    }
}

public struct ScreeningError: CodedError, Equatable {
    public let code: String
    public let message: String
    public init(code: String, message: String) { self.code = code; self.message = message }

    public static func invalidInput(_ m: String) -> ScreeningError { ScreeningError(code: "screening.invalidInput", message: m) }
    public static func config(_ m: String) -> ScreeningError { ScreeningError(code: "screening.config", message: m) }
}

/// A pre-screen algorithm. Input is a preprocessed series whose tensor relates to HU through
/// `series.mapping`; screeners move their HU thresholds into tensor space, so they work on
/// HU tensors and [0,1]-normalised ones alike.
///
/// `screen(batch:)` exists so a model-backed screener (ONNX later) can run several series in
/// one inference call; the built-ins loop.
public protocol Screener: Sendable {
    var id: String { get }
    var version: String { get }
    func screen(_ series: PreprocessedSeries) throws -> ScreenerOutput
    func screen(batch: [PreprocessedSeries]) throws -> [ScreenerOutput]
}

extension Screener {
    public func screen(batch: [PreprocessedSeries]) throws -> [ScreenerOutput] {
        try batch.map { try screen($0) }
    }

    /// Runs `body` and stamps id, version and run time on its output.
    func timed(_ body: () throws -> (findings: [Finding], score: Double, urgency: Urgency)) rethrows -> ScreenerOutput {
        let t0 = WallClock.monotonicNanoseconds()
        let r = try body()
        let ms = Double(WallClock.monotonicNanoseconds() - t0) / 1e6
        return ScreenerOutput(screenerID: id, screenerVersion: version, findings: r.findings, suspicionScore: r.score, urgency: r.urgency, runTimeMs: ms)
    }
}

@inline(__always)
func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
