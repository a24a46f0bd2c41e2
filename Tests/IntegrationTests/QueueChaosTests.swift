import Foundation
import RadGridCore
import RedisClient
import TaskQueue
import TestSupport
import Testing

/// The `radgrid-bench` executable holding the hidden `queue-worker` mode, from
/// `RADGRID_BIN_DIR` or the package's `.build/debug`.
enum QueueWorkerBinary {
    static var path: String? {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let dir = environment["RADGRID_BIN_DIR"] { candidates.append(dir + "/radgrid-bench") }
        candidates.append(Corpus.packageRoot.appendingPathComponent(".build/debug/radgrid-bench").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static var soak: Bool { ProcessInfo.processInfo.environment["RADGRID_SOAK"] == "1" }
}

/// A fleet of worker processes on one queue.
final class WorkerFleet: @unchecked Sendable {
    let binary: String
    let redisURL: String
    let prefix: String
    let queueName: String
    let leaseMs: Int
    let workMs: Int
    let logPath: String
    private(set) var workers: [ChildProcess] = []

    init(binary: String, redisURL: String, prefix: String, queueName: String, leaseMs: Int, workMs: Int) {
        self.binary = binary
        self.redisURL = redisURL
        self.prefix = prefix
        self.queueName = queueName
        self.leaseMs = leaseMs
        self.workMs = workMs
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-queue-chaos-\(UUID().uuidString).log").path
    }

    @discardableResult
    func start() throws -> ChildProcess {
        let worker = try ChildProcess(executable: binary, arguments: [
            "queue-worker", "--redis", redisURL, "--prefix", prefix, "--queue", queueName, "--concurrency", "8",
            "--lease-ms", String(leaseMs), "--work-ms", String(workMs), "--max-deliveries", "20", "--shutdown-grace-ms", "3000",
        ], outputPath: logPath)
        workers.append(worker)
        return worker
    }

    func killRandom(sparing spared: ChildProcess? = nil) -> ChildProcess? {
        let running = workers.filter { $0.isRunning && $0 !== spared }
        guard let victim = running.randomElement() else { return nil }
        victim.signal(SIGKILL)
        victim.wait(timeout: .seconds(5))
        return victim
    }

    func stopAll() -> [Int32?] {
        let running = workers.filter(\.isRunning)
        running.forEach { $0.signal(SIGTERM) }
        return running.map { $0.wait(timeout: .seconds(15)) }
    }

    deinit {
        for worker in workers where worker.isRunning { worker.signal(SIGKILL); worker.wait(timeout: .seconds(5)) }
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

@Suite("Queue chaos: worker processes killed, Redis restarted", .serialized, .enabled(if: QueueWorkerBinary.path != nil, "radgrid-bench is not built (swift build --product radgrid-bench, or set RADGRID_BIN_DIR)"))
struct QueueChaosTests {
    @Test func killedWorkersLoseNothingAndApplyNothingTwice() async throws {
        let binary = try #require(QueueWorkerBinary.path)
        let taskCount = QueueWorkerBinary.soak ? 10_000 : 2_000
        let workerCount = QueueWorkerBinary.soak ? 4 : 3
        let leaseMs = 2_000
        let url = try await TestRedis.url()
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix("chaos")
        let queue = TaskQueue(client: client, name: "chaos", configuration: TaskQueueConfiguration(prefix: KeyPrefix(prefix)))
        let lanes: [Lane] = [.stat, .urgent, .routine, .bulk]
        var specs: [TaskSpec] = []
        for index in 0..<taskCount { specs.append(TaskSpec(key: "task-\(index)", payload: Array("\(index)".utf8), lane: lanes[index % 4])) }
        for chunk in stride(from: 0, to: specs.count, by: 1000) {
            _ = try await queue.enqueue(Array(specs[chunk..<min(chunk + 1000, specs.count)]))
        }

        let fleet = WorkerFleet(binary: binary, redisURL: url, prefix: prefix, queueName: "chaos", leaseMs: leaseMs, workMs: QueueWorkerBinary.soak ? 60 : 100)
        for _ in 0..<workerCount { try fleet.start() }
        let effects = queue.keys.custom("effects")
        var kills: [Int64] = []
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(QueueWorkerBinary.soak ? 300 : 60)
        var nextKill = clock.now + .milliseconds(Int64.random(in: 1000...2000))
        var completed = 0
        var events = 0
        var pauses = 0
        var paused: (ChildProcess, ContinuousClock.Instant)?
        while clock.now < deadline {
            completed = Int(try await client.send("HLEN", RedisArgument(effects)).int ?? 0)
            if completed >= taskCount { break }
            if let (worker, until) = paused, clock.now >= until {
                worker.signal(SIGCONT)
                paused = nil
            }
            if clock.now >= nextKill && completed < taskCount * 9 / 10 {
                events += 1
                if events % 3 == 2, paused == nil, let victim = fleet.workers.filter(\.isRunning).randomElement() {
                    // Frozen past its lease, then resumed: its late completions must be refused.
                    victim.signal(SIGSTOP)
                    kills.append(WallClock.nowMilliseconds())
                    paused = (victim, clock.now + .milliseconds(Int64(leaseMs) + 1_500))
                    pauses += 1
                } else {
                    if fleet.killRandom(sparing: paused?.0) != nil { kills.append(WallClock.nowMilliseconds()) }
                    try fleet.start()
                }
                nextKill = clock.now + .milliseconds(Int64.random(in: 1000...2000))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        if let (worker, _) = paused { worker.signal(SIGCONT) }
        let exitCodes = fleet.stopAll()

        #expect(completed == taskCount, "completed \(completed) of \(taskCount); worker log: \(fleet.logPath)")
        #expect(kills.count >= 3, "the run should have survived several SIGKILLs and a SIGSTOP")
        #expect(pauses >= 1)
        // The frozen worker found out on waking: its completions were refused or its
        // renewals reported the leases lost (and its handlers were cancelled).
        let log = (try? String(contentsOfFile: fleet.logPath, encoding: .utf8)) ?? ""
        #expect(log.contains("completion refused") || log.contains("leases lost"), "no fencing seen in \(fleet.logPath)")
        // Every task's effect applied exactly once, although some ran more than once.
        let applied = try await client.send("HGETALL", RedisArgument(effects)).fieldMap ?? [:]
        #expect(applied.count == taskCount)
        let twice = applied.filter { $0.value.int != 1 }
        #expect(twice.isEmpty, "effects applied more than once: \(twice.keys.prefix(5))")
        let runs = try await client.send("HGETALL", RedisArgument(queue.keys.custom("runs"))).fieldMap ?? [:]
        let rerun = runs.filter { ($0.value.int ?? 0) > 1 }
        #expect(!rerun.isEmpty, "killing workers mid-task should have forced some re-runs")

        // Recovery bounded by the lease: a killed worker's task is back in a lane within about
        // one lease of the kill (the worker records when re-deliveries were re-enqueued).
        let requeued = try await client.send("HGETALL", RedisArgument(queue.keys.custom("requeued"))).fieldMap ?? [:]
        var worst: Int64 = 0
        for (_, value) in requeued {
            guard let at = value.int, let kill = kills.last(where: { $0 <= at }) else { continue }
            worst = max(worst, at - kill)
        }
        #expect(!requeued.isEmpty)
        #expect(worst <= Int64(leaseMs) + 1_000, "a task came back \(worst) ms after its worker was killed (lease \(leaseMs) ms)")

        print("queue chaos: \(taskCount) tasks, \(kills.count - pauses) SIGKILLs, \(pauses) SIGSTOPs, \(rerun.count) tasks re-run, worst re-enqueue \(worst) ms after a kill")
        let stats = try await queue.stats()
        #expect(stats.deadLetters == 0)
        #expect(stats.leases == 0)
        #expect(stats.lanes.allSatisfy { $0.depth == 0 && $0.pending == 0 && $0.delayed == 0 })
        // Graceful stop of the survivors: exit 0 within their grace period.
        #expect(exitCodes.allSatisfy { $0 == 0 }, "exit codes \(exitCodes)")
    }

    @Test func redisRestartMidRunLosesNothingAndWorkersCarryOn() async throws {
        let binary = try #require(QueueWorkerBinary.path)
        let server = try await RedisTestServer.start(appendOnly: true)
        defer { server.kill() }
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let taskCount = QueueWorkerBinary.soak ? 5_000 : 1_000
        let queue = TaskQueue(client: client, name: "restart", configuration: TaskQueueConfiguration(prefix: KeyPrefix("rg:")))
        _ = try await queue.enqueue((0..<taskCount).map { TaskSpec(key: "t\($0)", lane: $0 % 3 == 0 ? .urgent : .routine) })
        let fleet = WorkerFleet(binary: binary, redisURL: server.url, prefix: "rg:", queueName: "restart", leaseMs: 3_000, workMs: 20)
        let workers = [try fleet.start(), try fleet.start()]
        let effects = queue.keys.custom("effects")

        #expect(try await eventually(timeout: .seconds(20)) { (try await client.send("HLEN", RedisArgument(effects)).int ?? 0) > Int64(taskCount / 5) })
        let acknowledged = try await client.send("HLEN", RedisArgument(effects)).int ?? 0
        #expect(acknowledged < Int64(taskCount), "the restart should happen mid-run")
        server.stop()
        try await Task.sleep(for: .milliseconds(1500))
        try await server.restart()
        // Everything acknowledged before the restart survived it (AOF replayed).
        #expect((try await client.send("HLEN", RedisArgument(effects)).int ?? 0) >= acknowledged)

        let finished = try await eventually(timeout: .seconds(60)) { try await client.send("HLEN", RedisArgument(effects)).int == Int64(taskCount) }
        #expect(finished, "worker log: \(fleet.logPath)")
        // The same processes did the work: nobody restarted them.
        #expect(workers.allSatisfy { $0.isRunning })
        let applied = try await client.send("HGETALL", RedisArgument(effects)).fieldMap ?? [:]
        #expect(applied.count == taskCount)
        #expect(applied.values.allSatisfy { $0.int == 1 })
        let stats = try await queue.stats()
        #expect(stats.deadLetters == 0)
        #expect(stats.lanes.allSatisfy { $0.depth == 0 && $0.pending == 0 })
        #expect(fleet.stopAll().allSatisfy { $0 == 0 })
    }
}

func eventually(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
