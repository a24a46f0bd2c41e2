import RadGridCore

/// Where a study is in its life. Transitions are checked in Redis (see `StudyStore.transition`).
public enum StudyState: String, Sendable, Codable, CaseIterable {
    case received, queued, processing, screened, routing, assigned, accepted, reported, failed, quarantined

    /// The states a study may move to from this one.
    public var successors: Set<StudyState> {
        switch self {
        case .received: return [.queued, .failed, .quarantined]
        case .queued: return [.processing, .failed, .quarantined]
        case .processing: return [.screened, .queued, .failed, .quarantined]
        case .screened: return [.routing, .failed]
        case .routing: return [.assigned, .failed]
        case .assigned: return [.accepted, .routing, .failed]
        case .accepted: return [.reported, .routing, .failed]
        case .reported: return []
        case .failed: return [.queued]
        case .quarantined: return [.queued]
        }
    }

    /// The states from which `target` can be reached.
    public static func predecessors(of target: StudyState) -> [StudyState] {
        allCases.filter { $0.successors.contains(target) }
    }
}

/// Reading priority; also the task-queue lane a study's work runs in.
public enum StudyPriority: String, Sendable, Codable, CaseIterable, Comparable {
    case stat, urgent, routine, bulk

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: StudyPriority, rhs: StudyPriority) -> Bool { lhs.rank < rhs.rank }
}

/// What the gateway learns from an instance's header; no patient data.
public struct InstanceHeader: Sendable, Hashable, Codable {
    public var studyInstanceUID: String
    public var seriesInstanceUID: String
    public var sopInstanceUID: String
    public var modality: String
    public var bodyPart: String

    public init(studyInstanceUID: String, seriesInstanceUID: String, sopInstanceUID: String, modality: String, bodyPart: String) {
        self.studyInstanceUID = studyInstanceUID
        self.seriesInstanceUID = seriesInstanceUID
        self.sopInstanceUID = sopInstanceUID
        self.modality = modality
        self.bodyPart = bodyPart
    }
}

/// A study as recorded in Redis.
public struct StudyRecord: Sendable, Hashable, Codable {
    public var studyInstanceUID: String
    public var site: String
    public var state: StudyState
    public var priority: StudyPriority
    public var modality: String
    public var bodyPart: String
    public var instances: Int
    public var rawBytes: Int64
    public var storedBytes: Int64
    public var lateInstances: Int
    public var committed: Bool
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64
    public var lastInstanceAtMilliseconds: Int64
    /// Everything else the pipeline recorded (urgency, score, expert, reason, ...).
    public var attributes: [String: String]
}

/// Errors of the study store. Codes: `study.forbidden` (another site's study),
/// `study.unknown`, `study.invalidTransition`, `study.invalidInput`.
public struct StudyStoreError: CodedError, Equatable {
    public let code: String
    public let message: String

    public static func forbidden(_ message: String) -> StudyStoreError { .init(code: "study.forbidden", message: message) }
    public static func unknown(_ message: String) -> StudyStoreError { .init(code: "study.unknown", message: message) }
    public static func invalidTransition(_ message: String) -> StudyStoreError { .init(code: "study.invalidTransition", message: message) }
    public static func invalidInput(_ message: String) -> StudyStoreError { .init(code: "study.invalidInput", message: message) }
}
