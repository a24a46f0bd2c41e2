import Logging
import RedisClient

/// A queue split into shards, each a `TaskQueue` of its own hash tag (`{q:<name>:0}` …
/// `{q:<name>:N-1}`), so a Redis Cluster spreads them over its masters and the queue's
/// ceiling grows with the number of masters instead of stopping at one core of one server.
///
/// A task's shard follows from a routing key (the study, for the grid): every task of one
/// study, its fan-in group and the task that follows it share a shard, so the group's
/// scripts stay within one slot. Priorities and aging are kept by each shard's lanes; a
/// `TaskConsumer(queues: sharded.shards)` claims from every shard into one pool of slots,
/// so no shard waits behind another's backlog. One shard is the plain queue `<name>`
/// (keys `{q:<name>}`), the layout of an unsharded grid.
public final class ShardedTaskQueue: Sendable {
    public let name: String
    public let shards: [TaskQueue]

    public init(client: RedisClient, name: String = "tasks", shardCount: Int, configuration: TaskQueueConfiguration = TaskQueueConfiguration(),
                logger: Logger = Logger(label: "radgrid.queue")) {
        self.name = name
        let count = max(1, shardCount)
        shards = count == 1
            ? [TaskQueue(client: client, name: name, configuration: configuration, logger: logger)]
            : (0..<count).map { TaskQueue(client: client, name: Self.shardName(name, index: $0), configuration: configuration, logger: logger) }
    }

    /// `<name>:<index>`: the queue name (and hash tag) of one shard.
    public static func shardName(_ name: String, index: Int) -> String { "\(name):\(index)" }

    /// The shard that holds the tasks of `routingKey`: stable across processes and restarts
    /// (FNV-1a, not Swift's seeded `Hasher`).
    public func shard(forRoutingKey routingKey: String) -> TaskQueue {
        shards[Self.shardIndex(routingKey, count: shards.count)]
    }

    public static func shardIndex(_ routingKey: String, count: Int) -> Int {
        guard count > 1 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in routingKey.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    /// Enqueues each task on the shard of its routing key; results in the order of `specs`.
    public func enqueue(_ specs: [TaskSpec], routingKey: (TaskSpec) -> String) async throws -> [EnqueueResult] {
        var byShard: [Int: [Int]] = [:]
        for (index, spec) in specs.enumerated() { byShard[Self.shardIndex(routingKey(spec), count: shards.count), default: []].append(index) }
        var results = [EnqueueResult?](repeating: nil, count: specs.count)
        try await withThrowingTaskGroup(of: (Int, [Int], [EnqueueResult]).self) { group in
            for (shard, indices) in byShard {
                let queue = shards[shard]
                let batch = indices.map { specs[$0] }
                group.addTask { (shard, indices, try await queue.enqueue(batch)) }
            }
            for try await (_, indices, enqueued) in group {
                for (index, result) in zip(indices, enqueued) { results[index] = result }
            }
        }
        return results.map { $0! }
    }

    /// Every shard's counts added up (`QueueStats.merged`).
    public func stats() async throws -> QueueStats {
        var all: [QueueStats] = []
        for shard in shards { all.append(try await shard.stats()) }
        return QueueStats.merged(all, name: name)
    }
}
