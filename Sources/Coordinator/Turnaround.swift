import Foundation
import GridContract
import Metrics
import RadGridCore
import RedisClient
import Routing

/// Turnaround of reported studies, per priority and stage: received → assigned (first offer),
/// assigned → accepted, accepted → final (signed), and end to end; SLA breaches (signed after
/// the case's deadline). Exported as swift-metrics timers and counters, and kept in Redis
/// (`turnaround`, a hash of counters and histogram buckets) for `radgridctl status`.
public struct Turnaround: Sendable {
    public enum Stage: String, Sendable, CaseIterable, Codable {
        case receivedToAssigned = "received_to_assigned"
        case assignedToAccepted = "assigned_to_accepted"
        case acceptedToFinal = "accepted_to_final"
        case endToEnd = "end_to_end"
    }

    /// Histogram bucket bounds, minutes (the last bucket is everything above).
    public static let bucketMinutes: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 2880, 4320]

    let client: RedisClient
    let key: String

    public init(client: RedisClient, prefix: KeyPrefix) {
        self.client = client
        key = GridKeys(prefix: prefix).turnaround
    }

    /// The durations of one reported case, ms by stage (stages whose times are unknown are left out).
    public static func durations(receivedAt: Int64, info: CaseInfo) -> [Stage: Int64] {
        var result: [Stage: Int64] = [:]
        if let offered = info.firstOfferedAt { result[.receivedToAssigned] = max(0, offered - receivedAt) }
        if let offered = info.firstOfferedAt, let accepted = info.acceptedAt { result[.assignedToAccepted] = max(0, accepted - offered) }
        if let accepted = info.acceptedAt, let completed = info.completedAt { result[.acceptedToFinal] = max(0, completed - accepted) }
        if let completed = info.completedAt { result[.endToEnd] = max(0, completed - receivedAt) }
        return result
    }

    /// Records one reported case (call once per report: the coordinator does on the transition to `reported`).
    public func record(priority: Priority, receivedAt: Int64, info: CaseInfo) async throws {
        let durations = Self.durations(receivedAt: receivedAt, info: info)
        var commands: [RedisCommand] = []
        for (stage, ms) in durations {
            Timer(label: "radgrid_turnaround_seconds", dimensions: [("priority", priority.description), ("stage", stage.rawValue)],
                  preferredDisplayUnit: .seconds).recordMilliseconds(ms)
            let base = "\(priority.description)|\(stage.rawValue)|"
            let minutes = Double(ms) / 60_000
            let bucket = Self.bucketMinutes.firstIndex { minutes <= $0 } ?? Self.bucketMinutes.count
            commands.append(RedisCommand("HINCRBY", RedisArgument(key), RedisArgument(base + "n"), "1"))
            commands.append(RedisCommand("HINCRBY", RedisArgument(key), RedisArgument(base + "sum_ms"), RedisArgument(ms)))
            commands.append(RedisCommand("HINCRBY", RedisArgument(key), RedisArgument(base + "b\(bucket)"), "1"))
        }
        if let completed = info.completedAt, completed > info.deadline {
            Counter(label: "radgrid_sla_breaches_total", dimensions: [("priority", priority.description)]).increment()
            commands.append(RedisCommand("HINCRBY", RedisArgument(key), RedisArgument("\(priority.description)|breaches"), "1"))
        }
        commands.append(RedisCommand("HINCRBY", RedisArgument(key), RedisArgument("\(priority.description)|reported"), "1"))
        for reply in try await client.pipeline(commands) { try reply.throwingServerError() }
    }

    /// One priority's figures for one stage.
    public struct Figures: Sendable, Codable, Hashable {
        public var count: Int
        public var meanMinutes: Double
        /// Upper bounds of the histogram buckets holding the median and the 95th percentile
        /// (nil: above the last bound).
        public var p50Minutes: Double?
        public var p95Minutes: Double?
    }

    public struct Summary: Sendable, Codable, Hashable {
        public var reported: [String: Int]
        public var breaches: [String: Int]
        public var stages: [String: [String: Figures]]
    }

    /// What `radgridctl status` shows: per priority, per stage.
    public func summary() async throws -> Summary {
        let fields = (try await client.send("HGETALL", RedisArgument(key)).fieldMap ?? [:]).compactMapValues(\.int)
        var summary = Summary(reported: [:], breaches: [:], stages: [:])
        for priority in Priority.allCases {
            let p = priority.description
            if let n = fields[p + "|reported"] { summary.reported[p] = Int(n) }
            if let n = fields[p + "|breaches"] { summary.breaches[p] = Int(n) }
            for stage in Stage.allCases {
                let base = "\(p)|\(stage.rawValue)|"
                guard let count = fields[base + "n"], count > 0 else { continue }
                let counts = (0...Self.bucketMinutes.count).map { Int(fields[base + "b\($0)"] ?? 0) }
                func quantile(_ q: Double) -> Double? {
                    let target = Double(count) * q
                    var seen = 0
                    for (index, n) in counts.enumerated() {
                        seen += n
                        if Double(seen) >= target { return index < Self.bucketMinutes.count ? Self.bucketMinutes[index] : nil }
                    }
                    return nil
                }
                let mean = Double(fields[base + "sum_ms"] ?? 0) / Double(count) / 60_000
                summary.stages[p, default: [:]][stage.rawValue] = Figures(count: Int(count), meanMinutes: mean, p50Minutes: quantile(0.5), p95Minutes: quantile(0.95))
            }
        }
        return summary
    }
}
