/// How soon a human should look at a study, from the pre-screen.
public enum Urgency: String, Sendable, Codable, Comparable, CaseIterable {
    case routine, urgent, critical

    public var rank: Int {
        switch self {
        case .routine: 0
        case .urgent: 1
        case .critical: 2
        }
    }

    public static func < (a: Urgency, b: Urgency) -> Bool { a.rank < b.rank }

    /// The study priority this urgency calls for at least (critical → stat, urgent → urgent).
    public var minimumPriority: Priority? {
        switch self {
        case .critical: .stat
        case .urgent: .urgent
        case .routine: nil
        }
    }
}

/// Which model produced a result: its manifest's name and version and the SHA-256 of the
/// exact file that ran (provenance for QC and the regulator).
public struct ModelProvenance: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    public var version: String
    public var sha256: String

    public init(name: String, version: String, sha256: String) {
        self.name = name
        self.version = version
        self.sha256 = sha256
    }

    /// `name@version#sha256:<first 16 hex digits>`: short enough for an audit line, long
    /// enough to tell two builds of a model apart.
    public var description: String { "\(name)@\(version)#sha256:\(sha256.prefix(16))" }
}

/// A finding of the pre-screen, as the grid passes it on (to the router, the case, the audit).
public struct ScreeningFinding: Sendable, Hashable, Codable {
    /// Stable code, e.g. `ct.head.hyperdensity`.
    public var code: String
    public var probability: Double
    public var series: SeriesUID?
    /// Which screener or model said so, with its version (provenance for QC and the regulator).
    public var source: String
    /// Set when a model said so: which model file exactly.
    public var model: ModelProvenance?

    public init(code: String, probability: Double, series: SeriesUID? = nil, source: String, model: ModelProvenance? = nil) {
        self.code = code
        self.probability = probability
        self.series = series
        self.source = source
        self.model = model
    }
}

/// An instance that could not be read, and why (an error code, never patient data).
public struct FailedInstance: Sendable, Hashable, Codable {
    public var sop: SOPInstanceUID
    public var code: String
    public init(sop: SOPInstanceUID, code: String) {
        self.sop = sop
        self.code = code
    }
}

/// What happened to one instance on its way through the workers.
public enum InstanceOutcome: Sendable, Hashable, Codable {
    /// Decoded and preprocessed.
    case image
    /// A non-image object (SR, KO, PR, RT plan, PDF, …): listed for the expert, not processed.
    case nonImage(kind: String)
    /// Could not be read; the rest of the study goes on.
    case failed(code: String)
}

/// The study task's verdict: everything the coordinator and the router need from the
/// pre-screen, typed (it used to travel as a dictionary of strings).
public struct ScreeningOutcome: Sendable, Hashable, Codable {
    public var urgency: Urgency
    /// 0...1, the highest suspicion score of any series.
    public var score: Double
    public var findings: [ScreeningFinding]
    /// Image series screened.
    public var series: Int
    public var screenedImages: Int
    /// Non-image objects listed with the study.
    public var nonImageInstances: Int
    /// Instances that could not be read, with the error code of each.
    public var failedInstances: [FailedInstance]
    /// The priority the study had before the screen raised it (nil when not raised).
    public var priorityRaisedFrom: Priority?
    /// What the study's headers say, gathered over its instances (routing derives the
    /// reading specialty from it).
    public var headers: StudyDescriptors?
    /// Every model that screened the study, whether or not it found anything.
    public var models: [ModelProvenance]?

    public init(urgency: Urgency, score: Double, findings: [ScreeningFinding], series: Int, screenedImages: Int,
                nonImageInstances: Int = 0, failedInstances: [FailedInstance] = [], priorityRaisedFrom: Priority? = nil) {
        self.urgency = urgency
        self.score = score
        self.findings = findings
        self.series = series
        self.screenedImages = screenedImages
        self.nonImageInstances = nonImageInstances
        self.failedInstances = failedInstances
        self.priorityRaisedFrom = priorityRaisedFrom
    }

    /// Some instances could not be read: the case is routed, flagged partial.
    public var isPartial: Bool { !failedInstances.isEmpty }

    /// Finding codes at or above `threshold`, sorted and unique.
    public func findingCodes(threshold: Double = 0.5) -> [String] {
        Array(Set(findings.filter { $0.probability >= threshold }.map(\.code))).sorted()
    }
}
