import Foundation
import GridContract
import RadGridCore

/// How critical results are delivered and escalated (`Ops/critical-results.json`; the defaults
/// here equal that file). All durations are kept in milliseconds.
///
/// ```json
/// {
///   "retry": { "initialSeconds": 5, "maxSeconds": 600, "maxAttempts": 12 },
///   "escalateAfterMinutes": { "stat": 15, "urgent": 30, "routine": 60, "bulk": 120 },
///   "adminsAfterMinutes": 30,
///   "retentionDays": 30,
///   "requestTimeoutSeconds": 10
/// }
/// ```
public struct CriticalResultPolicy: Sendable, Equatable {
    /// The first retry waits this long; each later one twice the one before, up to `maxBackoffMs`.
    public var initialBackoffMs: Int64 = 5_000
    public var maxBackoffMs: Int64 = 600_000
    /// A delivery is dead-lettered after this many failed attempts.
    public var maxAttempts: Int = 12
    /// An unacknowledged result escalates to the site's second contact this long after it was raised.
    public var escalateAfterMs: [Priority: Int64] = [.stat: 15 * 60_000, .urgent: 30 * 60_000, .routine: 60 * 60_000, .bulk: 120 * 60_000]
    /// …and to the grid's admins this long after that.
    public var adminsAfterMs: Int64 = 30 * 60_000
    /// An acknowledged result is kept this long.
    public var retentionMs: Int64 = 30 * 86_400_000
    /// A webhook that has not answered by then counts as failed.
    public var requestTimeoutMs: Int64 = 10_000

    public init() {}

    public static let standard = CriticalResultPolicy()

    /// A claimed delivery is handed on after this long if its notifier never reports back.
    public var leaseMs: Int64 { 2 * requestTimeoutMs + 5_000 }

    public func escalateAfter(_ priority: Priority) -> Int64 { escalateAfterMs[priority] ?? escalateAfterMs[.routine] ?? 3_600_000 }

    public static func load(path: String) throws -> CriticalResultPolicy {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CriticalResultError(.invalidPolicy, "cannot read the critical-results policy file")
        }
        return try parse(data)
    }

    /// Parses and validates the JSON form; every error names the field. Unknown fields are
    /// refused, so a misspelt one does not silently fall back to a default.
    public static func parse(_ data: Data) throws(CriticalResultError) -> CriticalResultPolicy {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CriticalResultError(.invalidPolicy, "the policy is not a JSON object")
        }
        var policy = CriticalResultPolicy()
        try refuseUnknown(root, allowed: ["retry", "escalateAfterMinutes", "adminsAfterMinutes", "retentionDays", "requestTimeoutSeconds"], at: "")
        if let retry = root["retry"] {
            guard let retry = retry as? [String: Any] else { throw invalid("retry", "must be an object") }
            try refuseUnknown(retry, allowed: ["initialSeconds", "maxSeconds", "maxAttempts"], at: "retry.")
            if let value = retry["initialSeconds"] { policy.initialBackoffMs = try milliseconds(value, "retry.initialSeconds", unit: 1000, minimum: 0.01) }
            if let value = retry["maxSeconds"] { policy.maxBackoffMs = try milliseconds(value, "retry.maxSeconds", unit: 1000, minimum: 0.01) }
            if let value = retry["maxAttempts"] {
                guard let number = value as? NSNumber, number.doubleValue == number.doubleValue.rounded(),
                      (1...1000).contains(number.intValue) else { throw invalid("retry.maxAttempts", "must be a whole number from 1 to 1000") }
                policy.maxAttempts = number.intValue
            }
            guard policy.maxBackoffMs >= policy.initialBackoffMs else { throw invalid("retry.maxSeconds", "must not be below retry.initialSeconds") }
        }
        if let escalate = root["escalateAfterMinutes"] {
            guard let escalate = escalate as? [String: Any] else { throw invalid("escalateAfterMinutes", "must be an object of priorities") }
            for (name, value) in escalate {
                guard let priority = Priority(rawValue: name) else {
                    throw invalid("escalateAfterMinutes.\(name.prefix(32))", "is not a priority (stat, urgent, routine, bulk)")
                }
                policy.escalateAfterMs[priority] = try milliseconds(value, "escalateAfterMinutes.\(name)", unit: 60_000, minimum: 0.001)
            }
        }
        if let value = root["adminsAfterMinutes"] { policy.adminsAfterMs = try milliseconds(value, "adminsAfterMinutes", unit: 60_000, minimum: 0.001) }
        if let value = root["retentionDays"] { policy.retentionMs = try milliseconds(value, "retentionDays", unit: 86_400_000, minimum: 0.0001) }
        if let value = root["requestTimeoutSeconds"] { policy.requestTimeoutMs = try milliseconds(value, "requestTimeoutSeconds", unit: 1000, minimum: 0.05) }
        return policy
    }

    static func refuseUnknown(_ object: [String: Any], allowed: Set<String>, at path: String) throws(CriticalResultError) {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw invalid(path + String(unknown.prefix(32)), "is not a policy field (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    static func milliseconds(_ value: Any, _ field: String, unit: Double, minimum: Double) throws(CriticalResultError) -> Int64 {
        guard let number = value as? NSNumber, number.doubleValue.isFinite, number.doubleValue >= minimum,
              number.doubleValue * unit < 1e15 else {
            throw invalid(field, "must be a number of at least \(minimum)")
        }
        return Int64((number.doubleValue * unit).rounded())
    }

    static func invalid(_ field: String, _ problem: String) -> CriticalResultError {
        CriticalResultError(.invalidPolicy, "\(field) \(problem)")
    }
}
