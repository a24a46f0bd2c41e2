import Crypto
import Foundation
import RadGridCore
import RedisClient

/// A distribution of durations, in seconds (millisecond precision).
///
/// JSON: `count`, `median_s` (the middle value; the mean of the two middle ones for an even
/// count), `p90_s` (nearest rank: the ⌈0.9·n⌉-th smallest), `max_s`.
public struct DurationSummary: Sendable, Codable, Equatable {
    public var count: Int
    public var medianSeconds: Double
    public var p90Seconds: Double
    public var maxSeconds: Double

    enum CodingKeys: String, CodingKey {
        case count, medianSeconds = "median_s", p90Seconds = "p90_s", maxSeconds = "max_s"
    }

    public init(count: Int, medianSeconds: Double, p90Seconds: Double, maxSeconds: Double) {
        self.count = count
        self.medianSeconds = medianSeconds
        self.p90Seconds = p90Seconds
        self.maxSeconds = maxSeconds
    }

    /// nil when there is no duration.
    public init?(milliseconds values: [Int64]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let n = sorted.count
        let median = n % 2 == 1 ? Double(sorted[n / 2]) : Double(sorted[n / 2 - 1] + sorted[n / 2]) / 2
        let rank = (9 * n + 9) / 10
        self.init(count: n, medianSeconds: median / 1000, p90Seconds: Double(sorted[rank - 1]) / 1000, maxSeconds: Double(sorted[n - 1]) / 1000)
    }
}

/// One UTC day's service statistics for the regulator, every figure counted from audit entries
/// (the action each figure counts is named below), so each can be traced to the FHIR
/// AuditEvents of the same day. JSON keys are snake_case (in brackets).
public struct DailyServiceStatistics: Sendable, Codable, Equatable {
    public static let currentSchema = "radgrid.service-statistics/1"

    /// [`schema`] `radgrid.service-statistics/1`.
    public var schema: String
    /// [`day`] The UTC day, `YYYY-MM-DD`.
    public var day: String
    /// [`from_ms`, `until_ms`] What was counted: entries recorded in [from, until), ms since
    /// 1970; the whole day unless the export's range cuts it (`whole_day`).
    public var fromMilliseconds: Int64
    public var untilMilliseconds: Int64
    /// [`whole_day`]
    public var wholeDay: Bool
    /// [`audit`] The entries the figures come from.
    public var audit: AuditBasis
    /// [`studies_received`] `study.received`, by the priority it records.
    public var studiesReceived: Tally
    /// [`reports`]
    public var reports: Reports
    /// [`turnaround`] Received → report signed, for reports signed this day.
    public var turnaround: Turnaround
    /// [`experts_active`]
    public var experts: Experts
    /// [`qc`]
    public var qualityControl: QualityControl
    /// [`critical_results`]
    public var criticalResults: CriticalResults

    enum CodingKeys: String, CodingKey {
        case schema, day, fromMilliseconds = "from_ms", untilMilliseconds = "until_ms", wholeDay = "whole_day", audit
        case studiesReceived = "studies_received", reports, turnaround, experts = "experts_active", qualityControl = "qc"
        case criticalResults = "critical_results"
    }

    public struct AuditBasis: Sendable, Codable, Equatable {
        /// [`entries`] Audit entries of every chain recorded in the range.
        public var entries: Int
        /// [`sha256`] SHA-256 (hex) of their lines `<chain> <entry id> <entry hash>\n`, sorted
        /// as byte strings: a receiver recomputes it from the AuditEvents' `chain`, `entry` and
        /// `hash` details to check it holds exactly the entries counted here.
        public var sha256: String
    }

    public struct Tally: Sendable, Codable, Equatable {
        /// [`total`]
        public var total: Int
        /// [`by_priority`] `unknown` when the entry records none.
        public var byPriority: [String: Int]
        enum CodingKeys: String, CodingKey { case total, byPriority = "by_priority" }
    }

    public struct Reports: Sendable, Codable, Equatable {
        /// [`signed`] Reports issued: `report.signed`.
        public var signed: Int
        /// [`addenda`] `report.addendum` (not counted in `signed`).
        public var addenda: Int
    }

    public struct Turnaround: Sendable, Codable, Equatable {
        /// [`by_priority`] From the study's `study.received` to its `report.signed`, by the
        /// priority in force at signing: the last `priority=` a `study.*` entry of the study
        /// recorded before it (set at intake, raised by screening, carried into routing).
        public var byPriority: [String: DurationSummary]
        /// [`unmatched`] Reports signed whose study has no `study.received` entry left in Redis.
        public var unmatched: Int
        enum CodingKeys: String, CodingKey { case byPriority = "by_priority", unmatched }
    }

    public struct Experts: Sendable, Codable, Equatable {
        /// [`total`] Distinct ids in `signed_in` ∪ `reporting`.
        public var total: Int
        /// [`signed_in`] Distinct users of `auth.login` entries with role `expert` or `qc`.
        public var signedIn: Int
        /// [`reporting`] Distinct `expert=` of `report.signed` and `report.addendum`.
        public var reporting: Int
        enum CodingKeys: String, CodingKey { case total, signedIn = "signed_in", reporting }
    }

    public struct QualityControl: Sendable, Codable, Equatable {
        /// [`reviews_opened`] `qc.sampled`, plus `qc.disputed` that opened a review (`opened=1`).
        public var reviewsOpened: Int
        /// [`opened_by_reason`] The `reasons=` of `qc.sampled`; `dispute` for disputes that opened one.
        public var openedByReason: [String: Int]
        /// [`scored`] `qc.scored` (second reads scored).
        public var scored: Int
        /// [`sent_to_arbitration`] `qc.arbitration`.
        public var sentToArbitration: Int
        /// [`arbitrated`] `qc.arbitrated`.
        public var arbitrated: Int
        /// [`reviews_closed`] `qc.closed`: reviews with their final RADPEER score.
        public var reviewsClosed: Int
        /// [`final_scores`] `final=` of `qc.closed`.
        public var finalScores: [String: Int]
        /// [`discrepancies`] Closed with a final score other than `1`.
        public var discrepancies: Int
        /// [`significant_discrepancies`] Final `2b` or `3b` (RADPEER: likely clinically significant).
        public var significantDiscrepancies: Int
        /// [`disputes`] `qc.disputed` (every site dispute, whether or not it opened a review).
        public var disputes: Int
        /// [`experts_flagged`] `qc.flagged`.
        public var expertsFlagged: Int

        enum CodingKeys: String, CodingKey {
            case reviewsOpened = "reviews_opened", openedByReason = "opened_by_reason", scored, sentToArbitration = "sent_to_arbitration"
            case arbitrated, reviewsClosed = "reviews_closed", finalScores = "final_scores", discrepancies
            case significantDiscrepancies = "significant_discrepancies", disputes, expertsFlagged = "experts_flagged"
        }
    }

    public struct CriticalResults: Sendable, Codable, Equatable {
        /// [`raised`] `critical.raised`.
        public var raised: Int
        /// [`raised_by_source`] `source=` (`report`, `ai`).
        public var raisedBySource: [String: Int]
        /// [`raised_by_priority`] `priority=`.
        public var raisedByPriority: [String: Int]
        /// [`acknowledged`] `critical.acknowledged`.
        public var acknowledged: Int
        /// [`acknowledgement_time`] From the result's `critical.raised` to its
        /// `critical.acknowledged`, for those acknowledged this day (whenever raised); absent
        /// when there is none.
        public var acknowledgementTime: DurationSummary?
        /// [`unacknowledged_at_day_end`] Results raised before the range's end (this day or
        /// earlier) with no acknowledgement before it.
        public var unacknowledgedAtDayEnd: Int
        /// [`escalations`] `critical.escalated`.
        public var escalations: Int
        /// [`delivery_dead_letters`] `critical.deadLettered` (a notification given up).
        public var deliveryDeadLetters: Int

        enum CodingKeys: String, CodingKey {
            case raised, raisedBySource = "raised_by_source", raisedByPriority = "raised_by_priority", acknowledged
            case acknowledgementTime = "acknowledgement_time", unacknowledgedAtDayEnd = "unacknowledged_at_day_end"
            case escalations, deliveryDeadLetters = "delivery_dead_letters"
        }
    }

    /// One JSON object, keys sorted (what `--format stats` prints per line and the feed posts).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// Computes `DailyServiceStatistics` from audit entries.
public enum ServiceStatistics {
    public static let dayMilliseconds: Int64 = 86_400_000
    /// The critical results' chain (`CriticalResultKeys.auditChain`; Audit cannot import that module).
    public static let criticalResultsChain = "cr"
    /// How far an entry's hashed time may lie from its stream id's (intake entries carry the
    /// gateway's clock, the id Redis's): the window is read this much wider by id.
    public static let clockMarginMilliseconds: Int64 = 60_000

    /// The figures of every UTC day that meets [since, until), in order. `entries` may hold
    /// entries before `since` (a study's receipt, results raised earlier): they are used to
    /// match, never counted; entries at or after `until` are ignored, so a closed day's
    /// figures do not change later. Duplicates (same chain and id) count once.
    public static func compute(entries: [AuditRecord], sinceMilliseconds since: Int64, untilMilliseconds until: Int64) -> [DailyServiceStatistics] {
        guard since >= 0, until > since else { return [] }
        var seen = Set<String>()
        let records = entries.filter { $0.timestampMilliseconds < until && seen.insert($0.chain + "\n" + $0.id).inserted }
            .sorted { ($0.timestampMilliseconds, $0.chain, $0.id) < ($1.timestampMilliseconds, $1.chain, $1.id) }
        let history = History(records)
        let firstDay = since / dayMilliseconds, lastDay = (until - 1) / dayMilliseconds
        var days = (firstDay...lastDay).map { day in
            DayTally(from: max(since, day * dayMilliseconds), until: min(until, (day + 1) * dayMilliseconds), day: day)
        }
        for record in records where record.timestampMilliseconds >= since {
            days[Int(record.timestampMilliseconds / dayMilliseconds - firstDay)].add(record, history: history)
        }
        return days.map { $0.figures(history: history) }
    }

    /// The entries the figures of [since, until) need: every chain's entries of the range (read
    /// by stream id, widened by `clockMarginMilliseconds`), the whole chain of each study whose
    /// report was signed in it (its receipt and priorities, however old), and the critical
    /// results' chain (results raised earlier and still open).
    public static func entries(client: RedisClient, prefix: KeyPrefix, sinceMilliseconds since: Int64, untilMilliseconds until: Int64) async throws -> [AuditRecord] {
        var records = try await FHIRAuditEvent.entries(client: client, prefix: prefix, sinceMilliseconds: max(0, since - clockMarginMilliseconds),
                                                       untilMilliseconds: until + clockMarginMilliseconds)
        let studyChains = Set(records.filter { $0.action == "report.signed" && $0.timestampMilliseconds >= since && $0.timestampMilliseconds < until }.map(\.chain))
        for chain in studyChains.sorted() + [criticalResultsChain] {
            records += try await AuditTrail(client: client, prefix: prefix, chain: chain).entries()
        }
        return records
    }

    /// `entries` then `compute`.
    public static func daily(client: RedisClient, prefix: KeyPrefix, sinceMilliseconds since: Int64, untilMilliseconds until: Int64) async throws -> [DailyServiceStatistics] {
        compute(entries: try await entries(client: client, prefix: prefix, sinceMilliseconds: since, untilMilliseconds: until),
                sinceMilliseconds: since, untilMilliseconds: until)
    }

    /// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
    public static func dayString(_ day: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(day) * 86_400))
    }

    /// The day number of `YYYY-MM-DD` (UTC).
    public static func day(from text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.date(from: text).map { Int64(($0.timeIntervalSince1970 / 86_400).rounded(.down)) }
    }

    /// `key=value` pairs of an entry's details, which modules write separated by `;` or spaces.
    static func fields(_ details: String) -> [String: String] {
        var result: [String: String] = [:]
        for token in details.split(whereSeparator: { $0 == ";" || $0 == " " }) {
            guard let equals = token.firstIndex(of: "=") else { continue }
            result[String(token[..<equals])] = String(token[token.index(after: equals)...])
        }
        return result
    }

    /// What later entries are matched against: receipts, priorities, raised and acknowledged
    /// results, over every entry given (before the range included).
    struct History {
        var received: [String: Int64] = [:]
        var priorities: [String: [(time: Int64, priority: String)]] = [:]
        var raised: [String: [Int64]] = [:]
        var acknowledged: [String: [Int64]] = [:]

        init(_ records: [AuditRecord]) {
            for record in records {
                let time = record.timestampMilliseconds
                if record.action.hasPrefix("study."), !record.study.isEmpty {
                    if record.action == "study.received", received[record.study] == nil { received[record.study] = time }
                    if let priority = ServiceStatistics.fields(record.details)["priority"], !priority.isEmpty {
                        priorities[record.study, default: []].append((time, priority))
                    }
                }
                if record.action == "critical.raised" || record.action == "critical.acknowledged",
                   let result = ServiceStatistics.fields(record.details)["result"] {
                    if record.action == "critical.raised" { raised[result, default: []].append(time) } else { acknowledged[result, default: []].append(time) }
                }
            }
        }

        func priority(of study: String, at time: Int64) -> String? {
            priorities[study]?.last { $0.time <= time }?.priority
        }

        /// The latest raise of `result` at or before `time`.
        func raise(of result: String, atOrBefore time: Int64) -> Int64? {
            raised[result]?.last { $0 <= time }
        }

        /// Results whose latest raise before `time` has no acknowledgement before `time`.
        func open(at time: Int64) -> Int {
            raised.reduce(0) { count, item in
                guard let raise = item.value.last(where: { $0 < time }) else { return count }
                let answered = acknowledged[item.key]?.contains { $0 >= raise && $0 < time } ?? false
                return answered ? count : count + 1
            }
        }
    }

    /// One day's counters while the entries are walked.
    struct DayTally {
        let from: Int64
        let until: Int64
        let day: Int64
        var lines: [String] = []
        var received = 0
        var receivedByPriority: [String: Int] = [:]
        var signed = 0
        var addenda = 0
        var turnaround: [String: [Int64]] = [:]
        var unmatched = 0
        var signedIn = Set<String>()
        var reporting = Set<String>()
        var qc = DailyServiceStatistics.QualityControl(reviewsOpened: 0, openedByReason: [:], scored: 0, sentToArbitration: 0, arbitrated: 0,
                                                       reviewsClosed: 0, finalScores: [:], discrepancies: 0, significantDiscrepancies: 0,
                                                       disputes: 0, expertsFlagged: 0)
        var raised = 0
        var raisedBySource: [String: Int] = [:]
        var raisedByPriority: [String: Int] = [:]
        var acknowledged = 0
        var acknowledgementTimes: [Int64] = []
        var escalations = 0
        var deadLetters = 0

        init(from: Int64, until: Int64, day: Int64) {
            self.from = from
            self.until = until
            self.day = day
        }

        mutating func add(_ record: AuditRecord, history: History) {
            lines.append("\(record.chain) \(record.id) \(record.hash)\n")
            let details = ServiceStatistics.fields(record.details)
            let time = record.timestampMilliseconds
            switch record.action {
            case "study.received":
                received += 1
                receivedByPriority[details["priority"] ?? "unknown", default: 0] += 1
            case "report.signed":
                signed += 1
                if let expert = details["expert"], !expert.isEmpty { reporting.insert(expert) }
                if let receivedAt = history.received[record.study], receivedAt <= time {
                    turnaround[history.priority(of: record.study, at: time) ?? "unknown", default: []].append(time - receivedAt)
                } else {
                    unmatched += 1
                }
            case "report.addendum":
                addenda += 1
                if let expert = details["expert"], !expert.isEmpty { reporting.insert(expert) }
            case "auth.login":
                if let user = details["user"], ["expert", "qc"].contains(details["role"] ?? "") { signedIn.insert(user) }
            case "qc.sampled":
                qc.reviewsOpened += 1
                for reason in (details["reasons"] ?? "").split(separator: ",") { qc.openedByReason[String(reason), default: 0] += 1 }
            case "qc.disputed":
                qc.disputes += 1
                if details["opened"] == "1" {
                    qc.reviewsOpened += 1
                    qc.openedByReason["dispute", default: 0] += 1
                }
            case "qc.scored": qc.scored += 1
            case "qc.arbitration": qc.sentToArbitration += 1
            case "qc.arbitrated": qc.arbitrated += 1
            case "qc.closed":
                qc.reviewsClosed += 1
                let score = details["final"] ?? "unknown"
                qc.finalScores[score, default: 0] += 1
                if score != "1" { qc.discrepancies += 1 }
                if score == "2b" || score == "3b" { qc.significantDiscrepancies += 1 }
            case "qc.flagged": qc.expertsFlagged += 1
            case "critical.raised":
                raised += 1
                raisedBySource[details["source"] ?? "unknown", default: 0] += 1
                raisedByPriority[details["priority"] ?? "unknown", default: 0] += 1
            case "critical.acknowledged":
                acknowledged += 1
                if let result = details["result"], let raisedAt = history.raise(of: result, atOrBefore: time) {
                    acknowledgementTimes.append(time - raisedAt)
                }
            case "critical.escalated": escalations += 1
            case "critical.deadLettered": deadLetters += 1
            default: break
            }
        }

        func figures(history: History) -> DailyServiceStatistics {
            let digest = SHA256.hash(data: Array(lines.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.joined().utf8))
            return DailyServiceStatistics(
                schema: DailyServiceStatistics.currentSchema,
                day: ServiceStatistics.dayString(day),
                fromMilliseconds: from, untilMilliseconds: until,
                wholeDay: from == day * ServiceStatistics.dayMilliseconds && until == (day + 1) * ServiceStatistics.dayMilliseconds,
                audit: .init(entries: lines.count, sha256: digest.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()),
                studiesReceived: .init(total: received, byPriority: receivedByPriority),
                reports: .init(signed: signed, addenda: addenda),
                turnaround: .init(byPriority: turnaround.compactMapValues { DurationSummary(milliseconds: $0) }, unmatched: unmatched),
                experts: .init(total: signedIn.union(reporting).count, signedIn: signedIn.count, reporting: reporting.count),
                qualityControl: qc,
                criticalResults: .init(raised: raised, raisedBySource: raisedBySource, raisedByPriority: raisedByPriority, acknowledged: acknowledged,
                                       acknowledgementTime: DurationSummary(milliseconds: acknowledgementTimes),
                                       unacknowledgedAtDayEnd: history.open(at: until), escalations: escalations, deliveryDeadLetters: deadLetters)
            )
        }
    }
}

extension AuditRecord {
    /// An entry as XRANGE returns it (`[id, [field, value, …]]`) on `chain`; nil when it is not
    /// an audit entry. Public for readers that page through the streams themselves (the
    /// supervision feed).
    public init?(streamEntry: RedisValue, chain: String) {
        guard let record = AuditTrail.record(streamEntry, chain: chain) else { return nil }
        self = record
    }
}
