import GridContract
import RadGridCore

/// A priority lane: one stream per `Priority`. Claims serve `stat` first, then `urgent`,
/// `routine`, `bulk`, except that work older than its lane's aging cap goes before newer
/// higher-lane work.
public typealias Lane = Priority

/// Tuning of one queue. Every process using a queue should use the same values for the
/// queue-wide settings (lease, caps, retention).
public struct TaskQueueConfiguration: Sendable {
    /// Prefix of every key (default `rg:`).
    public var prefix: KeyPrefix
    /// How long a claim holds a task without renewal. Consumers renew every `lease / 3`;
    /// a dead worker's tasks are reclaimed about one lease after its last renewal.
    public var lease: Duration
    /// Handler attempts before a task is dead-lettered (per task, overridable at enqueue).
    public var maxAttempts: Int
    /// Deliveries whose lease expired (the worker died or hung) before the task is treated as
    /// poison and dead-lettered.
    public var maxDeliveries: Int
    /// Retry backoff: `base * 2^(failures-1)`, capped, with ±`jitter` proportional noise.
    public var backoffBase: Duration
    public var backoffMax: Duration
    public var backoffJitter: Double
    /// Aging caps: a task waiting longer than its lane's cap is served before newer work of
    /// higher lanes. `stat` is always served first and has no cap.
    public var agingCaps: [Lane: Duration]
    /// Results written by `complete` expire after this long (zero: never).
    public var resultTTL: Duration
    /// How long a completed task's key is remembered, so re-enqueueing it is a no-op.
    public var completedRetention: Duration
    /// Dead-letter stream: approximate maximum length and maximum age.
    public var deadLetterMaxLength: Int
    public var deadLetterRetention: Duration
    /// Fan-in groups that never complete (a member dead-lettered and purged) are dropped after this.
    public var groupTTL: Duration
    /// Consumers idle this long with nothing pending are removed from the consumer group.
    public var consumerIdleRemoval: Duration

    public init(
        prefix: KeyPrefix = .default,
        lease: Duration = .seconds(30),
        maxAttempts: Int = 5,
        maxDeliveries: Int = 5,
        backoffBase: Duration = .seconds(1),
        backoffMax: Duration = .seconds(300),
        backoffJitter: Double = 0.2,
        agingCaps: [Lane: Duration] = [.urgent: .seconds(60), .routine: .seconds(300), .bulk: .seconds(1800)],
        resultTTL: Duration = .seconds(86_400),
        completedRetention: Duration = .seconds(3_600),
        deadLetterMaxLength: Int = 10_000,
        deadLetterRetention: Duration = .seconds(7 * 86_400),
        groupTTL: Duration = .seconds(7 * 86_400),
        consumerIdleRemoval: Duration = .seconds(600)
    ) {
        self.prefix = prefix
        self.lease = lease
        self.maxAttempts = max(1, maxAttempts)
        self.maxDeliveries = max(1, maxDeliveries)
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.backoffJitter = min(max(backoffJitter, 0), 1)
        self.agingCaps = agingCaps
        self.resultTTL = resultTTL
        self.completedRetention = completedRetention
        self.deadLetterMaxLength = max(1, deadLetterMaxLength)
        self.deadLetterRetention = deadLetterRetention
        self.groupTTL = groupTTL
        self.consumerIdleRemoval = consumerIdleRemoval
    }

    /// Backoff before retry number `failures` (1-based), with jitter.
    public func backoff(afterFailures failures: Int) -> Duration {
        let base = Double(backoffBase.milliseconds)
        let exponent = min(max(failures - 1, 0), 30)
        let raw = min(base * Double(1 << exponent), Double(backoffMax.milliseconds))
        let noise = backoffJitter > 0 ? Double.random(in: -backoffJitter...backoffJitter) : 0
        return .milliseconds(Int64(max(0, raw * (1 + noise))))
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Errors of the task queue. Messages name the queue and the problem, never payloads.
public struct TaskQueueError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public static func unexpectedReply(_ what: String) -> TaskQueueError {
        TaskQueueError(code: "queue.unexpectedReply", message: "unexpected reply to \(what)")
    }
}

/// Throw from a handler to control what happens to the task.
public enum TaskFailure: Error, Sendable {
    /// Do not retry: dead-letter at once with this reason.
    case permanent(String)
    /// Retry after this delay instead of the configured backoff.
    case retry(after: Duration, String)
}
