/// Everything the router emits about a case, typed. The router writes one entry per step to
/// its event stream (`route:{rt}:audit`, fields `action`, `case`, `expert`, `details`, `t`);
/// this is the one place that reads those entries.
public enum CaseEvent: Sendable, Hashable {
    /// Registered with the router.
    case submitted
    /// No eligible expert has room now; the case waits.
    case waiting
    /// Offered to an expert, who must accept within the accept window.
    case offered(ExpertID)
    case accepted(ExpertID)
    /// The expert declined the offer (reason code); the case is routed again.
    case declined(ExpertID, reason: String)
    /// The expert gave an accepted case back; routed again.
    case released(ExpertID, reason: String)
    /// The expert did not accept in time; routed again.
    case acceptTimedOut(ExpertID)
    /// The report is signed (an opaque report reference, no text).
    case completed(ExpertID, report: String)
    /// Withdrawn.
    case cancelled(reason: String)
    /// Widened to a broader pool, aged to a higher priority, escalated past its deadline.
    case widened(level: Int)
    case aged
    case escalated
    /// Anything else the router records (roster changes have no case).
    case other(action: String)

    /// The expert an event is about, if any.
    public var expert: ExpertID? {
        switch self {
        case .offered(let e), .accepted(let e), .declined(let e, _), .released(let e, _), .acceptTimedOut(let e), .completed(let e, _): e
        default: nil
        }
    }
}

/// One router event as read from its stream.
public struct CaseEventEntry: Sendable, Hashable {
    public var id: StreamEntryID
    public var caseID: CaseID
    public var event: CaseEvent
    /// The router's clock (ms) when it happened.
    public var time: Int64

    public init(id: StreamEntryID, caseID: CaseID, event: CaseEvent, time: Int64) {
        self.id = id
        self.caseID = caseID
        self.event = event
        self.time = time
    }

    /// Reads one stream entry; nil for entries about no case (roster changes). Throws
    /// `contract.invalidEvent` for a case entry that is malformed.
    public static func parse(id text: String, fields: [String: String]) throws(ContractError) -> CaseEventEntry? {
        guard let id = StreamEntryID(text) else { throw ContractError(.invalidEvent, "malformed router event id") }
        guard let caseText = fields["case"], !caseText.isEmpty else { return nil }
        let caseID = try CaseID(caseText)
        let action = fields["action"] ?? ""
        let details = Self.details(fields["details"] ?? "")
        func expert() throws(ContractError) -> ExpertID {
            guard let text = fields["expert"] ?? details["expert"], !text.isEmpty else {
                throw ContractError(.invalidEvent, "router event '\(action)' names no expert")
            }
            return try ExpertID(text)
        }
        let event: CaseEvent
        switch action {
        case "submit": event = .submitted
        case "wait": event = .waiting
        case "offer": event = .offered(try expert())
        case "accept": event = .accepted(try expert())
        case "decline": event = .declined(try expert(), reason: details["reason"] ?? "")
        case "release": event = .released(try expert(), reason: details["reason"] ?? "")
        case "accept_timeout": event = .acceptTimedOut(try expert())
        case "complete": event = .completed(try expert(), report: details["report"] ?? "")
        case "cancel": event = .cancelled(reason: details["reason"] ?? "")
        case "widen": event = .widened(level: Int(details["level"] ?? "") ?? 0)
        case "age": event = .aged
        case "escalate", "breach": event = .escalated
        default: event = .other(action: action)
        }
        return CaseEventEntry(id: id, caseID: caseID, event: event, time: Int64(fields["t"] ?? "") ?? Int64(id.milliseconds))
    }

    /// `k=v;k=v` details of a router entry.
    public static func details(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }
}
