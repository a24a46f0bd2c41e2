import GridContract
/// What to enqueue. `key` is the idempotency key (e.g. `study/sop/stage`): a key already
/// queued, running, waiting for retry or completed within `completedRetention` is not
/// enqueued again.
public struct TaskSpec: Sendable, Hashable {
    public var key: String
    public var payload: [UInt8]
    public var lane: Lane
    /// Overrides the queue's `maxAttempts`.
    public var maxAttempts: Int?
    /// Fan-in group this task counts towards (created first with `expectGroup`).
    public var group: String?

    public init(key: String, payload: [UInt8] = [], lane: Lane = .routine, maxAttempts: Int? = nil, group: String? = nil) {
        self.key = key
        self.payload = payload
        self.lane = lane
        self.maxAttempts = maxAttempts
        self.group = group
    }
}

/// Where a task stands, as far as the queue remembers.
public enum TaskStatus: String, Sendable, Codable {
    case queued, running, delayed, completed, unknown

    init(code: String) {
        switch code {
        case "q": self = .queued
        case "r": self = .running
        case "d": self = .delayed
        case "c": self = .completed
        default: self = .unknown
        }
    }
}

/// Whether the queue holds a task (see `TaskQueue.presence(ofKeys:)`).
public enum TaskPresence: Sendable, Equatable {
    case live, completed, unknown
}

public enum EnqueueResult: Sendable, Equatable {
    /// A new task; the id of its lane entry.
    case enqueued(entryID: String)
    /// The key is already known; nothing was added.
    case duplicate(TaskStatus)
}

/// A task held under lease by a consumer. Its lane entry id is the claim's fencing token:
/// every re-delivery is a new entry, and completing or failing with an older one is refused.
public struct ClaimedTask: Sendable, Hashable {
    public let key: String
    public let payload: [UInt8]
    public let lane: Lane
    /// The consumer holding the lease (the lane entry is in its pending list).
    public let consumer: String
    /// 1 on first delivery; counts every claim, including ones whose worker died.
    public let delivery: Int
    /// Handler failures before this attempt.
    public let failures: Int
    public let maxAttempts: Int
    public let group: String?
    public let entryID: String
    /// The fencing token of this claim: its lane entry id.
    public var fence: String { entryID }
    /// Server time of the claim and of the lane entry's creation (ms since the epoch).
    public let claimedAtMs: Int64
    /// When this delivery's lane entry was appended (the time part of its id).
    public let enqueuedAtMs: Int64
    /// How long the task waited in its lane before this claim.
    public var queueWait: Duration { .milliseconds(max(0, claimedAtMs - enqueuedAtMs)) }
}

/// A write applied by the completion script iff the completion is accepted, so the caller's
/// own effect happens exactly once. The key must carry the queue's hash tag
/// (use `QueueKeys.custom(_:)`). Allowed commands: HSET HSETNX HINCRBY HDEL SADD SREM SET INCRBY
/// DEL RPUSH LPUSH ZADD ZINCRBY EXPIRE PEXPIRE XADD.
public struct Effect: Sendable, Hashable {
    public let command: String
    public let key: String
    public let arguments: [[UInt8]]

    public init(command: String, key: String, arguments: [[UInt8]]) {
        self.command = command.uppercased()
        self.key = key
        self.arguments = arguments
    }

    public static func hset(_ key: String, field: String, value: [UInt8]) -> Effect {
        Effect(command: "HSET", key: key, arguments: [Array(field.utf8), value])
    }
    public static func hset(_ key: String, field: String, value: String) -> Effect { hset(key, field: field, value: Array(value.utf8)) }
    public static func hincrby(_ key: String, field: String, by amount: Int = 1) -> Effect {
        Effect(command: "HINCRBY", key: key, arguments: [Array(field.utf8), Array(String(amount).utf8)])
    }
    public static func sadd(_ key: String, member: String) -> Effect { Effect(command: "SADD", key: key, arguments: [Array(member.utf8)]) }
    public static func incrby(_ key: String, by amount: Int = 1) -> Effect { Effect(command: "INCRBY", key: key, arguments: [Array(String(amount).utf8)]) }
    public static func rpush(_ key: String, value: [UInt8]) -> Effect { Effect(command: "RPUSH", key: key, arguments: [value]) }
    public static func set(_ key: String, value: [UInt8]) -> Effect { Effect(command: "SET", key: key, arguments: [value]) }
}

public enum CompletionOutcome: Sendable, Equatable {
    /// Applied now. `nextTask` is the fan-in task this completion enqueued, if any.
    case accepted(nextTask: String?)
    /// This same claim had already completed (a retried call after a lost reply).
    case alreadyCompleted
    /// The claim is no longer valid (lease taken over, task handed back or gone): nothing applied.
    case refused(reason: String)

    public var isAccepted: Bool {
        switch self {
        case .accepted, .alreadyCompleted: true
        case .refused: false
        }
    }
}

public enum FailureOutcome: Sendable, Equatable {
    /// Back to its lane when the retry is due (server ms).
    case retrying(dueAtMs: Int64)
    case deadLettered
    case refused(reason: String)
}

/// An entry of the dead-letter stream.
public struct DeadLetter: Sendable, Codable, Equatable {
    public let id: String
    public let key: String
    public let lane: String
    /// `attempts-exhausted`, `poison` (its worker kept dying) or the handler's permanent reason.
    public let reason: String
    public let error: String
    public let deliveries: Int
    public let failures: Int
    public let group: String?
    public let enqueuedAtMs: Int64
    public let deadAtMs: Int64
    public let payloadSize: Int
    public let payload: [UInt8]

    enum CodingKeys: String, CodingKey {
        case id, key, lane, reason, error, deliveries, failures, group
        case enqueuedAtMs = "enqueued_ms", deadAtMs = "dead_ms", payloadSize = "payload_bytes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        key = try c.decode(String.self, forKey: .key)
        lane = try c.decode(String.self, forKey: .lane)
        reason = try c.decode(String.self, forKey: .reason)
        error = try c.decode(String.self, forKey: .error)
        deliveries = try c.decode(Int.self, forKey: .deliveries)
        failures = try c.decode(Int.self, forKey: .failures)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        enqueuedAtMs = try c.decode(Int64.self, forKey: .enqueuedAtMs)
        deadAtMs = try c.decode(Int64.self, forKey: .deadAtMs)
        payloadSize = try c.decode(Int.self, forKey: .payloadSize)
        payload = []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(key, forKey: .key)
        try c.encode(lane, forKey: .lane)
        try c.encode(reason, forKey: .reason)
        try c.encode(error, forKey: .error)
        try c.encode(deliveries, forKey: .deliveries)
        try c.encode(failures, forKey: .failures)
        try c.encodeIfPresent(group, forKey: .group)
        try c.encode(enqueuedAtMs, forKey: .enqueuedAtMs)
        try c.encode(deadAtMs, forKey: .deadAtMs)
        try c.encode(payloadSize, forKey: .payloadSize)
    }

    init?(entry: RedisValueEntry) {
        let f = entry.fields
        guard let key = f["key"]?.string else { return nil }
        id = entry.id
        self.key = key
        lane = f["lane"]?.string ?? "?"
        reason = f["reason"]?.string ?? ""
        error = f["error"]?.string ?? ""
        deliveries = Int(f["deliveries"]?.int ?? 0)
        failures = Int(f["failures"]?.int ?? 0)
        let groupID = f["group"]?.string ?? ""
        group = groupID.isEmpty ? nil : groupID
        enqueuedAtMs = f["enqueued_ms"]?.int ?? 0
        deadAtMs = f["dead_ms"]?.int ?? 0
        payload = f["payload"]?.bytes ?? []
        payloadSize = payload.count
    }
}

/// Depth and health of one lane.
public struct LaneStats: Sendable, Codable, Equatable {
    public let lane: String
    /// Waiting to be claimed.
    public let depth: Int
    /// Claimed and not yet finished.
    public let pending: Int
    /// Age of the oldest waiting task (ms), 0 when none waits.
    public let oldestAgeMs: Int64
    /// Waiting for a retry.
    public let delayed: Int
    public let deadLetters: Int

    enum CodingKeys: String, CodingKey {
        case lane, depth, pending, delayed
        case oldestAgeMs = "oldest_age_ms", deadLetters = "dead_letters"
    }
}

public struct QueueStats: Sendable, Codable, Equatable {
    public let queue: String
    public let lanes: [LaneStats]
    public let deadLetters: Int
    public let leases: Int
    public let openGroups: Int

    /// The shards of one queue as one: counts added, the oldest wait the longest of any shard.
    public static func merged(_ shards: [QueueStats], name: String) -> QueueStats {
        guard shards.count > 1 else { return shards.first ?? QueueStats(queue: name, lanes: [], deadLetters: 0, leases: 0, openGroups: 0) }
        var lanes: [LaneStats] = []
        for lane in shards[0].lanes.map(\.lane) {
            let all = shards.compactMap { $0.lanes.first { $0.lane == lane } }
            lanes.append(LaneStats(lane: lane, depth: all.reduce(0) { $0 + $1.depth }, pending: all.reduce(0) { $0 + $1.pending },
                                   oldestAgeMs: all.map(\.oldestAgeMs).max() ?? 0, delayed: all.reduce(0) { $0 + $1.delayed },
                                   deadLetters: all.reduce(0) { $0 + $1.deadLetters }))
        }
        return QueueStats(queue: name, lanes: lanes, deadLetters: shards.reduce(0) { $0 + $1.deadLetters },
                          leases: shards.reduce(0) { $0 + $1.leases }, openGroups: shards.reduce(0) { $0 + $1.openGroups })
    }

    enum CodingKeys: String, CodingKey {
        case queue, lanes, leases
        case deadLetters = "dead_letters", openGroups = "open_groups"
    }
}

import RedisClient

/// A stream entry: id and its field map.
struct RedisValueEntry {
    let id: String
    let fields: [String: RedisValue]

    init?(_ value: RedisValue) {
        guard let parts = value.array, parts.count == 2, let id = parts[0].string else { return nil }
        self.id = id
        self.fields = parts[1].fieldMap ?? [:]
    }
}
