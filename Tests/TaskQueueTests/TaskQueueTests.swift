import Foundation
import RadGridCore
import RedisClient
import Synchronization
import TaskQueue
import TestSupport
import Testing

/// A queue under a prefix of its own on the shared test server.
func makeQueue(_ configure: (inout TaskQueueConfiguration) -> Void = { _ in }) async throws -> TaskQueue {
    var configuration = TaskQueueConfiguration(prefix: KeyPrefix(TestRedis.uniquePrefix("tq")))
    configure(&configuration)
    let client = try RedisClient(url: try await TestRedis.url())
    return TaskQueue(client: client, name: "tasks", configuration: configuration)
}

/// Polls `condition` until true or `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("TaskQueue scripts against a real redis-server")
struct TaskQueueTests {
    @Test func enqueueIsIdempotentByKey() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        let spec = TaskSpec(key: "study1/sop1/decode", payload: bytes("a"), lane: .routine)
        guard case .enqueued = try await queue.enqueue(spec) else { Issue.record("first enqueue not new"); return }
        #expect(try await queue.enqueue(spec) == .duplicate(.queued))
        // A batch with the same key twice and a new one: one round trip, one new task.
        let results = try await queue.enqueue([spec, TaskSpec(key: "study1/sop2/decode", lane: .routine), spec])
        #expect(results[0] == .duplicate(.queued))
        if case .enqueued = results[1] {} else { Issue.record("new key in batch was not enqueued") }
        #expect(results[2] == .duplicate(.queued))
        #expect(try await queue.stats().lanes.first { $0.lane == "routine" }?.depth == 2)

        let batch = try await queue.claim(consumer: "c1", count: 10)
        #expect(batch.tasks.count == 2)
        #expect(try await queue.enqueue(spec) == .duplicate(.running))
        for task in batch.tasks { #expect(try await queue.complete(task) == .accepted(nextTask: nil)) }
        // Completed keys are remembered for the idempotency window.
        #expect(try await queue.enqueue(spec) == .duplicate(.completed))
        #expect(try await queue.claim(consumer: "c1", count: 10).tasks.isEmpty)
    }

    @Test func enqueueIntoAMissingFanInGroupIsRefusedAndWritesNothing() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        let error = await #expect(throws: TaskQueueError.self) {
            try await queue.enqueue(TaskSpec(key: "orphan", lane: .routine, group: "no-such-study"))
        }
        #expect(error?.code == "queue.unknownGroup")
        #expect(try await queue.status(ofKey: "orphan") == .unknown)
        #expect(try await queue.stats().lanes.allSatisfy { $0.depth == 0 })
    }

    @Test func claimsServeHigherLanesFirst() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        try await queue.enqueue([
            TaskSpec(key: "b", lane: .bulk), TaskSpec(key: "r", lane: .routine),
            TaskSpec(key: "u", lane: .urgent), TaskSpec(key: "s", lane: .stat),
        ])
        let first = try await queue.claim(consumer: "c1", count: 2)
        #expect(first.tasks.map(\.key) == ["s", "u"])
        let second = try await queue.claim(consumer: "c1", count: 5)
        #expect(second.tasks.map(\.key) == ["r", "b"])
        #expect(second.tasks.allSatisfy { $0.delivery == 1 && $0.fence == $0.entryID && $0.consumer == "c1" })
        let empty = try await queue.claim(consumer: "c1", count: 5)
        #expect(empty.tasks.isEmpty)
        #expect(empty.laneTails.count == 4)
    }

    @Test func agedRoutineTaskGoesBeforeNewerStatWork() async throws {
        let queue = try await makeQueue { $0.agingCaps = [.urgent: .milliseconds(100), .routine: .milliseconds(200), .bulk: .seconds(60)] }
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "old-routine", lane: .routine))
        try await queue.enqueue(TaskSpec(key: "young-bulk", lane: .bulk))
        try await Task.sleep(for: .milliseconds(300))
        try await queue.enqueue((0..<20).map { TaskSpec(key: "stat-\($0)", lane: .stat) })
        let batch = try await queue.claim(consumer: "c1", count: 3)
        #expect(batch.tasks.map(\.key) == ["old-routine", "stat-0", "stat-1"])
        #expect(batch.tasks[0].queueWait >= .milliseconds(200))
    }

    @Test func lateCompletionAfterReclaimIsFenced() async throws {
        let queue = try await makeQueue { $0.lease = .milliseconds(200) }
        defer { queue.client.shutdown() }
        let effects = queue.keys.custom("effects")
        try await queue.enqueue(TaskSpec(key: "k1", payload: bytes("p"), lane: .urgent))
        let stale = try #require(try await queue.claim(consumer: "slow", count: 1).tasks.first)
        #expect(stale.payload == bytes("p"))
        try await Task.sleep(for: .milliseconds(300))
        // The renewal of an expired-and-reclaimed lease is refused too.
        let reclaim = try await queue.reclaimExpired()
        #expect(reclaim.requeued == 1)
        #expect(try await queue.renew([stale]) == ["k1"])
        let fresh = try #require(try await queue.claim(consumer: "fast", count: 1).tasks.first)
        #expect(fresh.fence != stale.fence)
        #expect(fresh.delivery == 2)
        // The record keeps no copy of the payload while an entry holds it: the reclaim carried it over.
        #expect(fresh.payload == bytes("p"))

        let late = try await queue.complete(stale, result: bytes("late"), effects: [.hincrby(effects, field: "k1")])
        #expect(late == .refused(reason: "fenced"))
        #expect(try await queue.client.send("HGET", RedisArgument(effects), "k1").isNull)

        #expect(try await queue.complete(fresh, result: bytes("ok"), effects: [.hincrby(effects, field: "k1")]) == .accepted(nextTask: nil))
        // A retried completion of the same claim (lost reply) is recognised, not re-applied.
        #expect(try await queue.complete(fresh, effects: [.hincrby(effects, field: "k1")]) == .alreadyCompleted)
        #expect(try await queue.client.send("HGET", RedisArgument(effects), "k1").int == 1)
        #expect(try await queue.result(forKey: "k1") == bytes("ok"))
        #expect(try await queue.complete(stale) == .refused(reason: "fenced"))
        // Nothing is left waiting or held in the lane.
        let urgent = try #require(try await queue.stats().lanes.first { $0.lane == "urgent" })
        #expect(urgent.depth == 0 && urgent.pending == 0)
        #expect(try await queue.stats().leases == 0)
    }

    @Test func effectKeysOutsideTheQueueSlotAreRejected() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "k"))
        let task = try #require(try await queue.claim(consumer: "c", count: 1).tasks.first)
        await #expect(throws: TaskQueueError.self) { try await queue.complete(task, effects: [.incrby("elsewhere")]) }
        #expect(try await queue.complete(task) == .accepted(nextTask: nil))
    }

    @Test func failuresRetryWithBackoffThenDeadLetterAndRetryFromThere() async throws {
        let queue = try await makeQueue { $0.maxAttempts = 2 }
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "flaky", payload: bytes("x"), lane: .bulk))
        let first = try #require(try await queue.claim(consumer: "c", count: 1).tasks.first)
        guard case .retrying(let due) = try await queue.fail(first, error: "decode.truncated: short read", retryAfter: .seconds(2)) else {
            Issue.record("first failure did not retry"); return
        }
        #expect(due > 0)
        #expect(try await queue.stats().lanes[3].delayed == 1)
        // Not promoted before it is due. (Checked against the clock, not assumed: a loaded
        // machine has stalled this test for more than the 2 s.)
        let early = try await queue.promoteDue().promoted
        if WallClock.nowMilliseconds() < due { #expect(early == 0) }
        let wait = due + 100 - WallClock.nowMilliseconds()
        if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) }
        let promoted = try await queue.promoteDue()
        #expect(promoted.promoted + early == 1)
        #expect(promoted.nextDueMs == nil)
        let second = try #require(try await queue.claim(consumer: "c", count: 1).tasks.first)
        #expect(second.failures == 1)
        #expect(second.delivery == 2)
        #expect(second.payload == bytes("x"))
        // A stale fail is refused like a stale completion.
        #expect(try await queue.fail(first, error: "late") == .refused(reason: "fenced"))
        #expect(try await queue.fail(second, error: "decode.truncated: short read") == .deadLettered)

        let dead = try await queue.deadLetters()
        #expect(dead.count == 1)
        #expect(dead.first?.key == "flaky")
        #expect(dead.first?.reason == "attempts-exhausted")
        #expect(dead.first?.error == "decode.truncated: short read")
        #expect(dead.first?.payload == bytes("x"))
        #expect(try await queue.stats().lanes[3].deadLetters == 1)

        let retried = try await queue.retryDeadLetter(id: try #require(dead.first?.id))
        if case .enqueued? = retried {} else { Issue.record("retry from the dead-letter stream did not enqueue") }
        #expect(try await queue.deadLetters().isEmpty)
        let third = try #require(try await queue.claim(consumer: "c", count: 1).tasks.first)
        #expect(third.failures == 0)
        #expect(third.payload == bytes("x"))
        #expect(try await queue.complete(third) == .accepted(nextTask: nil))
    }

    /// A member that can never complete (dead-lettered as poison, or out of attempts) must not
    /// hold its group's next task back forever: its death counts the group down like a
    /// completion. Retrying it from the dead letters runs it outside the group (no second count).
    @Test func aDeadMemberCountsItsFanInGroupDown() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        _ = try await queue.enqueueGroup(id: "g1", members: [TaskSpec(key: "m1"), TaskSpec(key: "m2"), TaskSpec(key: "m3")],
                                         then: TaskSpec(key: "after", payload: bytes("next")))
        let claimed = try await queue.claim(consumer: "c", count: 3).tasks
        #expect(claimed.count == 3)
        for task in claimed where task.key != "m2" { _ = try await queue.complete(task) }
        #expect(try await queue.status(ofKey: "after") == .unknown, "one member still runs")
        let m2 = try #require(claimed.first { $0.key == "m2" })
        #expect(try await queue.fail(m2, error: "cannot run", permanent: true) == .deadLettered)
        #expect(try await queue.status(ofKey: "after") == .queued, "the dead member counted the group down")
        let dead = try #require(try await queue.deadLetters().first)
        #expect(dead.group == "g1")
        _ = try await queue.retryDeadLetter(id: dead.id)
        let next = try await queue.claim(consumer: "c", count: 5).tasks
        #expect(Set(next.map(\.key)) == ["after", "m2"])
        #expect(next.first { $0.key == "m2" }?.group == nil, "the retried member runs outside its group")
    }

    @Test func poisonTaskIsDeadLetteredAfterRepeatedLeaseExpiry() async throws {
        let queue = try await makeQueue { $0.lease = .milliseconds(100); $0.maxDeliveries = 2 }
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "poison", lane: .stat))
        for delivery in 1...2 {
            let task = try #require(try await queue.claim(consumer: "dies-\(delivery)", count: 1).tasks.first)
            #expect(task.delivery == delivery)
            try await Task.sleep(for: .milliseconds(150))
            _ = try await queue.reclaimExpired()
        }
        #expect(try await queue.claim(consumer: "c", count: 1).tasks.isEmpty)
        let dead = try #require(try await queue.deadLetters().first)
        #expect(dead.reason == "poison")
        #expect(dead.deliveries == 2)
        #expect(try await queue.status(ofKey: "poison") == .unknown)
    }

    @Test func permanentFailureFromHandlerDeadLettersAtOnce() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "bad", lane: .urgent))
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 2, blockTimeout: .milliseconds(500))) { _ in
            throw TaskFailure.permanent("dicom.unsupportedTransferSyntax")
        }
        let run = Task { try await consumer.run() }
        // Generous: the whole suite runs beside real grids and a browser that load both cores.
        #expect(try await eventually(timeout: .seconds(30)) { try await queue.deadLetters().count == 1 })
        consumer.shutdown()
        try await run.value
        #expect(try await queue.deadLetters().first?.reason == "rejected: dicom.unsupportedTransferSyntax")
    }

    @Test func fanInEnqueuesStudyTaskExactlyOnce() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        let effects = queue.keys.custom("fanin")
        var expected = 0
        var rng = SystemRandomNumberGenerator()
        for study in 0..<500 {
            let count = Int.random(in: 1...6, using: &rng)
            expected += count
            let members = (0..<count).map { TaskSpec(key: "s\(study)/i\($0)/decode", lane: .routine) }
            _ = try await queue.enqueueGroup(id: "s\(study)", members: members, then: TaskSpec(key: "s\(study)/screen", payload: bytes("\(study)"), lane: .urgent))
        }
        // Creating a group twice is a no-op.
        #expect(try await queue.expectGroup(id: "s0", count: 99, then: TaskSpec(key: "other")) == false)
        let consumers = (0..<3).map { _ in
            TaskConsumer(queue: queue, configuration: .init(concurrency: 8, blockTimeout: .milliseconds(500))) { context in
                if context.key.hasSuffix("/screen") {
                    context.addEffect(.hincrby(effects, field: context.key))
                } else {
                    context.addEffect(.incrby(queue.keys.custom("instances")))
                }
            }
        }
        let runs = consumers.map { consumer in Task { try await consumer.run() } }
        let done = try await eventually(timeout: .seconds(60)) { try await queue.client.send("HLEN", RedisArgument(effects)).int == 500 }
        #expect(done)
        try await Task.sleep(for: .milliseconds(200))
        for consumer in consumers { consumer.shutdown() }
        for run in runs { try await run.value }
        let counts = try await queue.client.send("HGETALL", RedisArgument(effects)).fieldMap ?? [:]
        #expect(counts.count == 500)
        #expect(counts.values.allSatisfy { $0.int == 1 })
        #expect(try await queue.client.send("GET", RedisArgument(queue.keys.custom("instances"))).int == Int64(expected))
        let stats = try await queue.stats()
        #expect(stats.openGroups == 0)
        #expect(stats.lanes.allSatisfy { $0.depth == 0 && $0.pending == 0 })
    }

    @Test func gracefulShutdownHandsBackUnfinishedWorkAtOnce() async throws {
        let queue = try await makeQueue { $0.lease = .seconds(30) }
        defer { queue.client.shutdown() }
        try await queue.enqueue((0..<3).map { TaskSpec(key: "long-\($0)", payload: bytes("p\($0)"), lane: .routine) })
        let started = Mutex(0)
        let slow = TaskConsumer(queue: queue, configuration: .init(concurrency: 3, shutdownGrace: .milliseconds(300))) { _ in
            started.withLock { $0 += 1 }
            try await Task.sleep(for: .seconds(60))
        }
        let slowRun = Task { try await slow.run() }
        #expect(try await eventually { started.withLock { $0 } == 3 })
        let clock = ContinuousClock()
        let begin = clock.now
        slow.shutdown()
        try await slowRun.value
        // Stopped after the grace period (plus scheduling slack on a loaded machine), not
        // after the 60 s handler or the 30 s lease.
        #expect(clock.now - begin < .seconds(10))

        let finished = Mutex<[String]>([])
        let other = TaskConsumer(queue: queue, configuration: .init(concurrency: 3)) { context in
            // The handed-back delivery carries the payload over to the new entry.
            finished.withLock { $0.append(context.key + "=" + String(decoding: context.task.payload, as: UTF8.self)) }
        }
        let otherRun = Task { try await other.run() }
        // Handed back at once: another consumer runs them long before the 30 s lease would
        // have let them go (bounds wide enough for a loaded 2-core machine running the suite
        // in parallel).
        #expect(try await eventually(timeout: .seconds(15)) { finished.withLock { $0.count } == 3 })
        #expect(clock.now - begin < .seconds(20))
        other.shutdown()
        try await otherRun.value
        #expect(Set(finished.withLock { $0 }) == ["long-0=p0", "long-1=p1", "long-2=p2"])
        // Hand-back does not count as a delivery towards the poison limit.
        #expect(try await queue.stats().lanes.allSatisfy { $0.depth == 0 && $0.pending == 0 })
    }

    @Test func gracefulShutdownLetsShortTasksFinish() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "short"))
        let effects = queue.keys.custom("e")
        let started = Mutex(false)
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 1, shutdownGrace: .seconds(5))) { context in
            started.withLock { $0 = true }
            try await Task.sleep(for: .milliseconds(300))
            context.addEffect(.incrby(effects))
        }
        let run = Task { try await consumer.run() }
        #expect(try await eventually { started.withLock { $0 } })
        consumer.shutdown()
        try await run.value
        #expect(try await queue.client.send("GET", RedisArgument(effects)).int == 1)
        #expect(try await queue.status(ofKey: "short") == .completed)
    }

    @Test func steadyStatFloodDoesNotStarveRoutinePastItsCap() async throws {
        let queue = try await makeQueue { $0.agingCaps = [.urgent: .milliseconds(300), .routine: .milliseconds(500), .bulk: .seconds(2)] }
        defer { queue.client.shutdown() }
        let waits = Mutex<[String: Duration]>([:])
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 2, batchSize: 2)) { context in
            waits.withLock { $0[context.key] = context.task.queueWait }
            try await Task.sleep(for: .milliseconds(5))
        }
        // The flood: always far more stat work queued than the consumer can take.
        try await queue.enqueue((0..<200).map { TaskSpec(key: "stat-pre-\($0)", lane: .stat) })
        let flood = Task {
            var n = 0
            while !Task.isCancelled {
                try await queue.enqueue((0..<20).map { TaskSpec(key: "stat-\(n)-\($0)", lane: .stat) })
                n += 1
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let run = Task { try await consumer.run() }
        try await Task.sleep(for: .milliseconds(100))
        try await queue.enqueue(TaskSpec(key: "routine-1", lane: .routine))
        let served = try await eventually(timeout: .seconds(20)) { waits.withLock { $0["routine-1"] } != nil }
        flood.cancel()
        consumer.shutdown()
        try await run.value
        #expect(served)
        let wait = try #require(waits.withLock { $0["routine-1"] })
        // Served once it aged past its 500 ms cap; the upper bound leaves room for a loaded
        // machine, while without aging it would wait as long as the flood lasts.
        #expect(wait >= .milliseconds(500))
        #expect(wait < .seconds(6))
        // Without aging it would still be waiting: stat work remained queued throughout.
        #expect(try await queue.stats().lanes[0].depth > 0)
    }

    @Test func housekeepingPrunesTombstonesAndDepartedConsumers() async throws {
        let queue = try await makeQueue { $0.completedRetention = .zero; $0.consumerIdleRemoval = .zero }
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "k", lane: .stat))
        let task = try #require(try await queue.claim(consumer: "gone", count: 1).tasks.first)
        try await queue.complete(task)
        #expect(try await queue.status(ofKey: "k") == .completed)
        try await Task.sleep(for: .milliseconds(5))
        try await queue.housekeeping()
        #expect(try await queue.client.send("HLEN", RedisArgument(queue.keys.state)).int == 0)
        #expect(try await queue.client.send("LLEN", RedisArgument(queue.keys.done)).int == 0)
        let consumers = try await queue.client.send("XINFO", "CONSUMERS", RedisArgument(queue.keys.lane(.stat)), "workers")
        #expect(consumers.array?.isEmpty == true)
        // After the window the key may be enqueued again.
        if case .enqueued = try await queue.enqueue(TaskSpec(key: "k", lane: .stat)) {} else { Issue.record("pruned key not re-enqueueable") }
    }

    @Test func finishedEntriesAreTrimmedFromTheLanes() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        try await queue.enqueue((0..<1000).map { TaskSpec(key: "t\($0)", lane: .routine) })
        var completed = 0
        while true {
            let batch = try await queue.claim(consumer: "c", count: 50)
            if batch.tasks.isEmpty { break }
            let outcomes = try await queue.complete(batch.tasks.map { TaskQueue.Completion(task: $0) })
            completed += outcomes.filter { $0 == .accepted(nextTask: nil) }.count
        }
        #expect(completed == 1000)
        // Acknowledged entries go in whole stream nodes (100 entries each by default): at most
        // about one node of finished entries stays behind.
        let length = try #require(try await queue.client.send("XLEN", RedisArgument(queue.keys.lane(.routine))).int)
        #expect(length <= 200)
        let routine = try #require(try await queue.stats().lanes.first { $0.lane == "routine" })
        #expect(routine.depth == 0 && routine.pending == 0)
    }

    @Test func renewedLeaseOutlivesItsDurationAndLapsesWithoutRenewal() async throws {
        // A lease of 1 s renewed every 250 ms for 2 s (twice its length), then left to lapse.
        // (Generous margins: tests run in parallel on a busy 2-core machine.)
        let queue = try await makeQueue { $0.lease = .seconds(1) }
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "long", lane: .routine))
        let task = try #require(try await queue.claim(consumer: "busy", count: 1).tasks.first)
        for _ in 0..<8 {
            try await Task.sleep(for: .milliseconds(250))
            #expect(try await queue.renew([task]).isEmpty)
        }
        #expect(try await queue.reclaimExpired().requeued == 0)
        #expect(try await queue.status(ofKey: "long") == .running)
        try await Task.sleep(for: .milliseconds(1_300))
        let reclaimed = try await queue.reclaimExpired()
        #expect(reclaimed.requeued == 1)
        #expect(try await queue.status(ofKey: "long") == .queued)
        #expect(try await queue.renew([task]) == ["long"])
        let again = try #require(try await queue.claim(consumer: "other", count: 1).tasks.first)
        #expect(again.delivery == 2)
        #expect(try await queue.complete(task) == .refused(reason: "fenced"))
        #expect(try await queue.complete(again) == .accepted(nextTask: nil))
    }

    @Test func consumerRecreatesItsGroupWhenTheStreamVanishes() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        let done = Mutex(0)
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 2, blockTimeout: .milliseconds(300))) { _ in
            done.withLock { $0 += 1 }
        }
        let run = Task { try await consumer.run() }
        try await queue.enqueue(TaskSpec(key: "a", lane: .urgent))
        #expect(try await eventually { done.withLock { $0 } == 1 })
        // As after a restart without persistence: the lanes and their group are gone.
        try await queue.client.send(["DEL"] + queue.keys.lanes.map { RedisArgument($0) } + [RedisArgument(queue.keys.state)])
        try await queue.enqueue(TaskSpec(key: "b", lane: .urgent))
        #expect(try await eventually { done.withLock { $0 } == 2 })
        consumer.shutdown()
        try await run.value
    }

    @Test func consumerNeverRunsMoreHandlersThanItsConcurrency() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        let effects = queue.keys.custom("effects")
        try await queue.enqueue((0..<60).map { TaskSpec(key: "t\($0)", lane: .routine) })
        struct Gauge { var now = 0, most = 0 }
        let gauge = Mutex(Gauge())
        // Two claims in flight and completions outside the slot count must still leave at most
        // `concurrency` handlers running at once.
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 3, batchSize: 2, parallelClaims: 2, blockTimeout: .milliseconds(300))) { context in
            gauge.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 1...6)))
            gauge.withLock { $0.now -= 1 }
            context.addEffect(.hincrby(effects, field: context.key))
        }
        let run = Task { try await consumer.run() }
        #expect(try await eventually(timeout: .seconds(30)) { try await queue.client.send("HLEN", RedisArgument(effects)).int == 60 })
        consumer.shutdown()
        try await run.value
        let counts = try await queue.client.send("HVALS", RedisArgument(effects)).array?.compactMap(\.int) ?? []
        #expect(counts.count == 60 && counts.allSatisfy { $0 == 1 })
        let most = gauge.withLock { $0.most }
        #expect(most <= 3)
        #expect(most >= 2)
        #expect(try await queue.stats().lanes.allSatisfy { $0.depth == 0 && $0.pending == 0 })
    }

    @Test func anEffectRedisRejectsFailsTheTaskInsteadOfCompletingIt() async throws {
        let queue = try await makeQueue { $0.maxAttempts = 1 }
        defer { queue.client.shutdown() }
        let notAHash = queue.keys.custom("plain")
        try await queue.client.send("SET", RedisArgument(notAHash), "v")
        try await queue.enqueue(TaskSpec(key: "k", payload: bytes("x"), lane: .urgent))
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 2, blockTimeout: .milliseconds(300))) { context in
            context.addEffect(.hincrby(notAHash, field: "f"))  // WRONGTYPE in the completion script
        }
        let run = Task { try await consumer.run() }
        // Generous: the whole suite runs beside real grids and a browser that load both cores.
        #expect(try await eventually(timeout: .seconds(30)) { try await queue.deadLetters().count == 1 })
        consumer.shutdown()
        try await run.value
        let dead = try #require(try await queue.deadLetters().first)
        #expect(dead.key == "k")
        #expect(dead.error.contains("effect"))
        #expect(dead.payload == bytes("x"))
        #expect(try await queue.status(ofKey: "k") == .unknown)
        #expect(try await queue.client.send("GET", RedisArgument(notAHash)).string == "v")
    }

    @Test func anEffectWithADisallowedCommandIsRejectedForGood() async throws {
        let queue = try await makeQueue()
        defer { queue.client.shutdown() }
        try await queue.enqueue(TaskSpec(key: "k", lane: .urgent))
        let consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: 1, blockTimeout: .milliseconds(300))) { context in
            context.addEffect(Effect(command: "FLUSHALL", key: queue.keys.custom("x"), arguments: []))
        }
        let run = Task { try await consumer.run() }
        // Generous: the whole suite runs beside real grids and a browser that load both cores.
        #expect(try await eventually(timeout: .seconds(30)) { try await queue.deadLetters().count == 1 })
        consumer.shutdown()
        try await run.value
        let dead = try #require(try await queue.deadLetters().first)
        #expect(dead.reason.hasPrefix("rejected:"))
        #expect(dead.reason.contains("FLUSHALL"))
    }
}
