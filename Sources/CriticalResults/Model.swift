import Crypto
import GridContract
import RadGridCore

/// Who flagged the result: the reporting expert (a signed final report marked critical) or the
/// pre-screen (an AI critical finding on a STAT case).
public enum CriticalSource: String, Sendable, Codable, CaseIterable {
    case report, ai
}

/// Where a result stands. `dead` means the site's own notification failed after every retry:
/// the result stays open and still escalates.
public enum CriticalState: String, Sendable, Codable, CaseIterable {
    case notifying, delivered, acknowledged, dead
}

/// Who is told at each escalation level.
public enum CriticalTarget: String, Sendable, Codable {
    /// Level 0: the sending site's webhook (`critical.raised`).
    case site
    /// Level 1: the site's second contact (`critical.escalated`).
    case secondContact
    /// Level 2: the grid's admins (`critical.escalated`).
    case admins

    public init?(level: Int) {
        switch level {
        case 0: self = .site
        case 1: self = .secondContact
        case 2: self = .admins
        default: return nil
        }
    }

    public var level: Int {
        switch self {
        case .site: 0
        case .secondContact: 1
        case .admins: 2
        }
    }

    /// The webhook event type the target receives.
    public var event: String { self == .site ? "critical.raised" : "critical.escalated" }
}

/// The site's acknowledgement: who, how, when.
public struct CriticalAcknowledgement: Sendable, Codable, Hashable {
    public var by: String
    public var method: String
    public var atMs: Int64

    public init(by: String, method: String, atMs: Int64) {
        self.by = by
        self.method = method
        self.atMs = atMs
    }
}

/// One level's webhook delivery.
public struct CriticalDelivery: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable { case pending, delivered, dead, cancelled }
    public var target: CriticalTarget
    public var state: State
    public var attempts: Int
    /// An error code or HTTP status, never patient data.
    public var lastError: String?
    /// When it was delivered or given up.
    public var atMs: Int64?
}

/// A critical result the grid must get acknowledged by the sending site.
public struct CriticalResult: Sendable, Codable, Hashable {
    /// `cr-` and 20 hex digits, derived from the study and source (stable across retries).
    public var id: String
    public var study: StudyUID
    public var caseID: CaseID?
    public var site: SiteID
    public var source: CriticalSource
    public var priority: Priority
    public var raisedMs: Int64
    public var state: CriticalState
    /// Attempts of the site's own notification.
    public var attempts: Int
    /// Last error of the site's own notification.
    public var lastError: String?
    /// Escalations so far: 0 none, 1 the second contact, 2 the admins.
    public var escalationLevel: Int
    /// When the next escalation is due (nil after the last one or the acknowledgement).
    public var nextEscalationMs: Int64?
    public var acknowledgement: CriticalAcknowledgement?
    /// One per level reached, site first.
    public var deliveries: [CriticalDelivery]

    /// The stable id of a study's result from one source.
    public static func id(study: StudyUID, source: CriticalSource) -> String {
        let digest = SHA256.hash(data: Array((source.rawValue + "|" + study.rawValue).utf8))
        return "cr-" + digest.prefix(10).map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// The delivery id a receiver can de-duplicate on (`X-RadGrid-Delivery`).
    public func deliveryID(level: Int) -> String { "\(id)-\(level)" }

    /// Parses a result hash (HGETALL); nil when it is not one.
    static func parse(_ fields: [String: String]) -> CriticalResult? {
        guard let id = fields["id"], let studyText = fields["study"], let siteText = fields["site"],
              let source = fields["source"].flatMap(CriticalSource.init(rawValue:)),
              let priority = fields["priority"].flatMap(Priority.init(rawValue:)),
              let raised = fields["raised"].flatMap({ Int64($0) }),
              let state = fields["state"].flatMap(CriticalState.init(rawValue:)) else { return nil }
        var deliveries: [CriticalDelivery] = []
        for level in 0...2 {
            guard let text = fields["d\(level)_state"], let deliveryState = CriticalDelivery.State(rawValue: text),
                  let target = CriticalTarget(level: level) else { continue }
            let error = fields["d\(level)_error"].flatMap { $0.isEmpty ? nil : $0 }
            deliveries.append(CriticalDelivery(target: target, state: deliveryState, attempts: fields["d\(level)_attempts"].flatMap { Int($0) } ?? 0,
                                               lastError: error, atMs: fields["d\(level)_at"].flatMap { Int64($0) }))
        }
        var acknowledgement: CriticalAcknowledgement?
        if let by = fields["ack_by"], let method = fields["ack_method"], let at = fields["ack_at"].flatMap({ Int64($0) }) {
            acknowledgement = CriticalAcknowledgement(by: by, method: method, atMs: at)
        }
        let escalateAt = fields["escalate_at"].flatMap { Int64($0) } ?? 0
        return CriticalResult(
            id: id, study: StudyUID(unchecked: studyText),
            caseID: fields["case"].flatMap { $0.isEmpty ? nil : CaseID(unchecked: $0) },
            site: SiteID(unchecked: siteText), source: source, priority: priority, raisedMs: raised, state: state,
            attempts: deliveries.first?.attempts ?? 0, lastError: deliveries.first?.lastError,
            escalationLevel: fields["level"].flatMap { Int($0) } ?? 0,
            nextEscalationMs: escalateAt > 0 && state != .acknowledged ? escalateAt : nil,
            acknowledgement: acknowledgement, deliveries: deliveries
        )
    }
}

/// What raising did.
public enum CriticalRaiseOutcome: Sendable, Equatable {
    /// A new result; the site will be notified.
    case raised
    /// The study already has a result from this source (in this state): nothing was sent again.
    case alreadyRaised(CriticalState)
}

/// The errors of the module. Messages name the field or the step, never patient data or secrets.
public struct CriticalResultError: CodedError, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        /// The policy file is not valid (the message names the field).
        public static let invalidPolicy = Code(rawValue: "critical.invalidPolicy")
        /// A webhook configuration is not valid (URL, secret).
        public static let invalidWebhook = Code(rawValue: "critical.invalidWebhook")
        /// An acknowledgement body is not valid.
        public static let invalidAcknowledgement = Code(rawValue: "critical.invalidAcknowledgement")
        /// No critical result for the study (or not the caller's).
        public static let notFound = Code(rawValue: "critical.notFound")
        /// No webhook is configured for a delivery's target.
        public static let noWebhook = Code(rawValue: "critical.noWebhook")
        /// A script answered something the caller does not understand.
        public static let unexpectedReply = Code(rawValue: "critical.unexpectedReply")
    }

    public let codeValue: Code
    public let message: String
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, _ message: String) {
        codeValue = code
        self.message = message
    }
}
