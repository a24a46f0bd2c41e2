import Foundation
import GridContract
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import TaskQueue
import Testing
import TestSupport
@testable import WorkerDaemon

@Suite("Worker lifecycle: the heartbeat outlives the drain")
struct WorkerLifecycleTests {
    /// Defect of the first wave: services were `[consumer, heartbeat]`, and a ServiceGroup stops
    /// in reverse order, so a draining worker stopped heartbeating first and vanished from
    /// `radgridctl status` while it still held tasks. Now the worker reports `draining` until
    /// its last task is done, then `stopped`.
    @Test func aDrainingWorkerKeepsReportingUntilItsLastTaskEnds() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        let prefix = KeyPrefix(TestRedis.uniquePrefix("drain"))
        let queue = TaskQueue(client: client, name: "tasks", configuration: TaskQueueConfiguration(prefix: prefix))
        let counters = CounterBox()
        let started = AsyncStream.makeStream(of: Void.self)
        // The task ends when the test says so, after it has looked (not after a fixed time,
        // which a loaded machine can outrun).
        let release = AsyncStream.makeStream(of: Void.self)
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 1, blockTimeout: .milliseconds(300), shutdownGrace: .seconds(20))) { _ in
            started.continuation.yield()
            for await _ in release.stream { break }
        }
        let heartbeat = WorkerHeartbeat(client: client, prefix: prefix, name: "w-drain", slots: 1, interval: .milliseconds(200),
                                        counters: counters, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [client, heartbeat, DrainReporting(consumer: consumer, counters: counters)], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        _ = try await queue.enqueue(TaskSpec(key: "slow", payload: [1]))
        var iterator = started.stream.makeAsyncIterator()
        _ = await iterator.next()
        await group.triggerGracefulShutdown()
        // Past the heartbeat's TTL (3 s): the draining worker is still listed, as draining.
        try await Task.sleep(for: .milliseconds(3_600))
        let observer = try RedisClient(url: try await TestRedis.url())
        defer { observer.shutdown() }
        let key = RedisArgument(WorkerHeartbeat.key(prefix: prefix, name: "w-drain"))
        #expect(try await observer.send("HGET", key, "state").string == "draining")
        release.continuation.yield()
        release.continuation.finish()
        try await running.value
        #expect(try await observer.send("HGET", key, "state").string == "stopped")
        let after = TaskQueue(client: observer, name: "tasks", configuration: TaskQueueConfiguration(prefix: prefix))
        #expect(try await after.status(ofKey: "slow") == .completed, "the task finished during the drain")
    }
}
