import Audit
import RadGridCore
import RedisClient

/// An audit entry's place in the feed's order: its stream id's time, then its chain, then the
/// id's sequence. Every chain's stream ids carry Redis's clock, so this order interleaves the
/// chains by time, and a position names exactly what was sent before it.
public struct FeedPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64
    public var sequence: UInt64
    public var chain: String

    public init(milliseconds: Int64, sequence: UInt64, chain: String) {
        self.milliseconds = milliseconds
        self.sequence = sequence
        self.chain = chain
    }

    /// From a stream entry id `<ms>-<seq>`.
    public init?(chain: String, entryID: String) {
        let parts = entryID.split(separator: "-")
        guard parts.count == 2, let ms = Int64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
        self.init(milliseconds: ms, sequence: seq, chain: chain)
    }

    public var entryID: String { "\(milliseconds)-\(sequence)" }
    public var description: String { "\(chain)/\(entryID)" }

    public static func < (a: FeedPosition, b: FeedPosition) -> Bool {
        (a.milliseconds, a.chain, a.sequence) < (b.milliseconds, b.chain, b.sequence)
    }
}

/// What the feed has delivered to one endpoint, as stored in Redis.
public struct FeedCursor: Sendable, Equatable {
    /// The last entry the endpoint acknowledged (2xx); nil before the first.
    public var position: FeedPosition?
    /// The id of the last batch acknowledged.
    public var lastBatch: String?
    /// When that was (ms).
    public var acknowledgedAtMilliseconds: Int64?
    /// The next day (days since 1970, UTC) whose statistics are due; nil until the first
    /// entries are acknowledged (their day starts the series).
    public var statisticsDay: Int64?
    /// A batch sent but not acknowledged: resent first, exactly, under the same id.
    public var pending: Pending?
    /// The sequence of the last signed checkpoint the endpoint acknowledged (0: none yet).
    public var checkpointSequence = 0

    public struct Pending: Sendable, Equatable {
        public var id: String
        public var end: FeedPosition
        public var count: Int
    }
}

/// The cursor's hash `<prefix>feed:{feed}:cursor:<name>`: `ms`, `seq`, `chain` (the last entry
/// acknowledged), `batch`, `acked_ms`, `stats_day` (`YYYY-MM-DD`, the next day whose statistics
/// are due), `pending` (`<id>|<ms>|<seq>|<count>|<chain>` of a batch in flight, or empty). Each
/// change is one HSET, so the position and the pending batch never disagree.
public struct FeedCursorStore: Sendable {
    public let client: RedisClient
    public let key: String

    public init(client: RedisClient, prefix: KeyPrefix, name: String) {
        self.client = client
        key = Self.key(prefix: prefix, name: name)
    }

    public static func key(prefix: KeyPrefix, name: String) -> String { prefix.value + "feed:{feed}:cursor:" + name }

    public func load() async throws -> FeedCursor {
        let fields = try await client.send("HGETALL", RedisArgument(key)).fieldMap ?? [:]
        func text(_ name: String) -> String? { fields[name]?.string.flatMap { $0.isEmpty ? nil : $0 } }
        var cursor = FeedCursor()
        if let chain = text("chain") {
            guard let ms = text("ms").flatMap({ Int64($0) }), let seq = text("seq").flatMap({ UInt64($0) }) else {
                throw FeedError(.unexpectedReply, "the feed cursor \(key) is malformed")
            }
            cursor.position = FeedPosition(milliseconds: ms, sequence: seq, chain: chain)
        }
        cursor.lastBatch = text("batch")
        cursor.checkpointSequence = text("ckpt").flatMap { Int($0) } ?? 0
        cursor.acknowledgedAtMilliseconds = text("acked_ms").flatMap { Int64($0) }
        if let day = text("stats_day") {
            guard let number = ServiceStatistics.day(from: day) else { throw FeedError(.unexpectedReply, "the feed cursor's stats_day is not a date") }
            cursor.statisticsDay = number
        }
        if let pending = text("pending") {
            let parts = pending.split(separator: "|", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 5, let ms = Int64(parts[1]), let seq = UInt64(parts[2]), let count = Int(parts[3]), !parts[0].isEmpty else {
                throw FeedError(.unexpectedReply, "the feed cursor's pending batch is malformed")
            }
            cursor.pending = .init(id: parts[0], end: FeedPosition(milliseconds: ms, sequence: seq, chain: parts[4]), count: count)
        }
        return cursor
    }

    /// Records a batch about to be sent (before the POST: a crash after it resends the same).
    func markPending(_ pending: FeedCursor.Pending) async throws {
        let value = "\(pending.id)|\(pending.end.milliseconds)|\(pending.end.sequence)|\(pending.count)|\(pending.end.chain)"
        try await client.send("HSET", RedisArgument(key), "pending", RedisArgument(value))
    }

    func clearPending() async throws {
        try await client.send("HSET", RedisArgument(key), "pending", "")
    }

    /// The endpoint acknowledged a batch of entries ending at `end`.
    func acknowledge(through end: FeedPosition, batch: String, statisticsDay: Int64?, at now: Int64) async throws {
        var arguments: [RedisArgument] = ["HSET", RedisArgument(key), "ms", RedisArgument(end.milliseconds), "seq", RedisArgument(end.sequence),
                                          "chain", RedisArgument(end.chain), "batch", RedisArgument(batch), "acked_ms", RedisArgument(now), "pending", ""]
        if let statisticsDay { arguments += ["stats_day", RedisArgument(ServiceStatistics.dayString(statisticsDay))] }
        try await client.send(arguments)
    }

    /// The endpoint acknowledged the signed checkpoints up to `sequence`.
    func acknowledgeCheckpoints(through sequence: Int, batch: String, at now: Int64) async throws {
        try await client.send("HSET", RedisArgument(key), "ckpt", RedisArgument(sequence), "batch", RedisArgument(batch), "acked_ms", RedisArgument(now))
    }

    /// The endpoint acknowledged a day's statistics; `next` is due next.
    func acknowledgeStatistics(next: Int64, batch: String, at now: Int64) async throws {
        try await client.send("HSET", RedisArgument(key), "stats_day", RedisArgument(ServiceStatistics.dayString(next)),
                              "batch", RedisArgument(batch), "acked_ms", RedisArgument(now))
    }
}
