import RedisClient
import Synchronization
@testable import TaskQueue
import Testing
import TestSupport

/// Sharded lanes (`{q:tasks:0}` … `{q:tasks:N-1}`), against the Redis of the run: a single
/// server, or under `make test`'s cluster phase a Redis Cluster whose masters hold the shards.
@Suite("Sharded queue: a study's work in one shard, claimed across all")
struct ShardedQueueTests {
    @Test func routingIsStableAndSpread() {
        // FNV-1a, the same in every process and release: a study's shard never moves.
        #expect(ShardedTaskQueue.shardIndex("1.2.840.113619.2.55.3", count: 3) == ShardedTaskQueue.shardIndex("1.2.840.113619.2.55.3", count: 3))
        #expect(ShardedTaskQueue.shardIndex("anything", count: 1) == 0)
        var counts = [0, 0, 0, 0]
        for study in 0..<4000 { counts[ShardedTaskQueue.shardIndex("2.25.\(study)", count: 4)] += 1 }
        #expect(counts.allSatisfy { $0 > 800 && $0 < 1200 }, "\(counts)")
        #expect(ShardedTaskQueue.shardName("tasks", index: 2) == "tasks:2")
    }

    @Test func fanInStaysInItsShardAndEveryStudyRunsOnce() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let configuration = TaskQueueConfiguration(prefix: KeyPrefix(TestRedis.uniquePrefix("sq")))
        let sharded = ShardedTaskQueue(client: client, name: "tasks", shardCount: 3, configuration: configuration)
        #expect(sharded.shards.map(\.keys.hashTag) == ["{q:tasks:0}", "{q:tasks:1}", "{q:tasks:2}"])
        let studies = 150
        var instances = 0
        for study in 0..<studies {
            let shard = sharded.shard(forRoutingKey: "study-\(study)")
            let members = (0..<(1 + study % 4)).map { TaskSpec(key: "s\(study)/i\($0)", lane: .routine) }
            instances += members.count
            _ = try await shard.enqueueGroup(id: "s\(study)", members: members,
                                             then: TaskSpec(key: "s\(study)/study", payload: Array("study-\(study)".utf8), lane: study % 5 == 0 ? .urgent : .routine))
        }
        let ranInShard = Mutex<[String: String]>([:])
        let consumers = (0..<2).map { _ in
            TaskConsumer(queues: sharded.shards, configuration: .init(concurrency: 8, blockTimeout: .milliseconds(500))) { context in
                ranInShard.withLock { $0[context.key] = context.queue.name }
                // Effects land in the task's own shard (its hash tag): the completion script's slot.
                if context.key.hasSuffix("/study") {
                    context.addEffect(.hincrby(context.queue.keys.custom("studies"), field: context.key))
                } else {
                    context.addEffect(.incrby(context.queue.keys.custom("instances")))
                }
            }
        }
        let runs = consumers.map { consumer in Task { try await consumer.run() } }
        func studyCount() async throws -> Int {
            var total = 0
            for shard in sharded.shards { total += Int(try await client.send("HLEN", RedisArgument(shard.keys.custom("studies"))).int ?? 0) }
            return total
        }
        #expect(try await eventually(timeout: .seconds(60)) { try await studyCount() == studies })
        for consumer in consumers { consumer.shutdown() }
        for run in runs { try await run.value }

        // Every study task ran once, in the shard its routing key names, after its instances there.
        var instanceTotal = 0
        for shard in sharded.shards {
            let counts = try await client.send("HGETALL", RedisArgument(shard.keys.custom("studies"))).array?.compactMap(\.string) ?? []
            for index in stride(from: 1, to: counts.count, by: 2) { #expect(counts[index] == "1", "\(counts[index - 1]) ran \(counts[index]) times") }
            instanceTotal += Int(try await client.send("GET", RedisArgument(shard.keys.custom("instances"))).string ?? "0") ?? 0
        }
        #expect(instanceTotal == instances)
        let ran = ranInShard.withLock { $0 }
        for study in 0..<studies {
            let expected = sharded.shard(forRoutingKey: "study-\(study)").name
            #expect(ran["s\(study)/study"] == expected)
            #expect(ran["s\(study)/i0"] == expected)
        }
        // All three shards had work: the consumer claimed from each.
        #expect(Set(ran.values).count == 3)
        for shard in sharded.shards {
            let stats = try await shard.stats()
            #expect(stats.leases == 0 && stats.openGroups == 0 && stats.lanes.allSatisfy { $0.pending == 0 })
        }
    }
}
