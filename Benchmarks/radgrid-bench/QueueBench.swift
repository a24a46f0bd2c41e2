import ArgumentParser
import Foundation
import RadGridCore
import RedisClient
import Synchronization
import TaskQueue

/// `radgrid-bench queue`: no-op tasks through enqueue → claim → complete with one consumer
/// (this process) and N slots, against the raw Redis ceiling for the same command mix.
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "Task queue throughput and claim latency vs the raw Redis ceiling.")

    @Option(help: "Redis URL (else REDIS_URL, else redis://127.0.0.1:6379).") var redis: String?
    @Option(help: "Tasks per run.") var tasks = 20_000
    @Option(help: "Concurrent task slots in the consumer.") var concurrency = 64
    @Option(help: "Most tasks per claim.") var batch = 64
    @Option(help: "Claims under way at once in the consumer.") var parallelClaims = 2
    @Option(help: "Payload bytes per task.") var payloadBytes = 64
    @Option(help: "Tasks per pipelined enqueue batch.") var enqueueBatch = 500
    @Option(help: "Rounds of ceiling + queue; the medians are reported (both share two cores with Redis, so single runs are noisy).") var rounds = 3
    @Flag(help: "Print one JSON object as the last line.") var json = false
    @Flag(help: "Skip the raw ceiling (for profiling the queue alone; no ratio is reported).") var skipCeiling = false

    func run() async throws {
        LogSetup.bootstrap(level: .warning)
        let url = RedisEndpoint.resolve(option: redis)
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let payload = [UInt8](repeating: 0x5a, count: payloadBytes)

        var ceilings: [Double] = []
        var runs: [Measured] = []
        for _ in 0..<max(1, rounds) {
            if !skipCeiling { ceilings.append(try await rawCeiling(client: client, payload: payload)) }
            runs.append(try await queueRun(client: client, payload: payload))
        }
        func median(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
        let ceiling = median(ceilings)
        // The round with the median throughput, with its own claim latencies.
        let measured = runs.sorted { $0.tasksPerSecond < $1.tasksPerSecond }[runs.count / 2]

        let ratio = skipCeiling ? 0 : measured.tasksPerSecond / max(ceiling, 1)
        print("queue bench: \(tasks) no-op tasks, concurrency \(concurrency), claim batch \(batch), payload \(payloadBytes) B, median of \(runs.count) rounds")
        if !skipCeiling {
            print("  per-round ratio " + zip(runs, ceilings).map { String(format: "%.3f", $0.tasksPerSecond / max($1, 1)) }.joined(separator: ", "))
        }
        print("  rounds: queue " + runs.map { String(format: "%.0f", $0.tasksPerSecond) }.joined(separator: ", ")
            + " tasks/s; ceiling " + ceilings.map { String(format: "%.0f", $0) }.joined(separator: ", ") + " tasks/s")
        print(String(format: "  queue         %10.0f tasks/s  (enqueue→claim→complete, end to end %.2f s)", measured.tasksPerSecond, measured.seconds))
        if skipCeiling {
            print("  raw ceiling   skipped")
        } else {
            print(String(format: "  raw ceiling   %10.0f tasks/s  (pipelined XADD / XREADGROUP / XACK + XTRIM, no logic)", ceiling))
            print(String(format: "  ratio         %10.1f %%", ratio * 100))
        }
        print(String(format: "  claim latency p50 %.3f ms  p99 %.3f ms  (%d claims, %.1f tasks/claim)", measured.claimP50, measured.claimP99, measured.claims, Double(tasks) / Double(max(measured.claims, 1))))
        if json {
            let object: [String: Any] = [
                "bench": "queue", "tasks": tasks, "concurrency": concurrency, "batch": batch, "payload_bytes": payloadBytes,
                "tasks_per_s": (measured.tasksPerSecond * 10).rounded() / 10,
                "ceiling_tasks_per_s": (ceiling * 10).rounded() / 10,
                "ratio": (ratio * 1000).rounded() / 1000,
                "claim_p50_ms": (measured.claimP50 * 1000).rounded() / 1000,
                "claim_p99_ms": (measured.claimP99 * 1000).rounded() / 1000,
                "claims": measured.claims, "rounds": runs.count,
                "rounds_tasks_per_s": runs.map { ($0.tasksPerSecond * 10).rounded() / 10 },
                "rounds_ceiling_tasks_per_s": ceilings.map { ($0 * 10).rounded() / 10 },
                // Each round's queue run against the ceiling measured just before it: the
                // machine's speed drifts between rounds, so this pairs like with like.
                "rounds_ratio": zip(runs, ceilings).map { (($0.tasksPerSecond / max($1, 1)) * 1000).rounded() / 1000 },
                "ratio_median_of_rounds": (median(zip(runs, ceilings).map { $0.tasksPerSecond / max($1, 1) }) * 1000).rounded() / 1000,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    struct Measured {
        var tasksPerSecond: Double
        var seconds: Double
        var claimP50: Double
        var claimP99: Double
        var claims: Int
    }

    /// The same mix without queue logic, as many parallel loops as the client has pooled
    /// connections: pipelined XADD of a batch (the queue's entry fields), XREADGROUP of it,
    /// then one XACK of its ids and an XTRIM of the acknowledged head, as the queue does.
    func rawCeiling(client: RedisClient, payload: [UInt8]) async throws -> Double {
        let stream = "bench:{raw}:\(UInt32.random(in: 0...UInt32.max))"
        try await client.send("XGROUP", "CREATE", RedisArgument(stream), "g", "0", "MKSTREAM")
        let rate = try await Self.rawMix(client: client, stream: stream, tasks: tasks, batch: batch, payload: payload)
        try await client.send("DEL", RedisArgument(stream))
        return rate
    }

    /// The raw mix on `stream`: per loop, pipelined XADD of a batch
    /// (the queue's entry fields), XREADGROUP of it, then XACK of its ids and an XTRIM of the
    /// acknowledged head; `poolSize` loops at once. Tasks/s.
    static func rawMix(client: RedisClient, stream: String, tasks: Int, batch: Int, payload: [UInt8]) async throws -> Double {
        let loops = client.configuration.poolSize
        let perLoop = tasks / loops
        let start = WallClock.monotonicNanoseconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for loop in 0..<loops {
                group.addTask {
                    var done = 0
                    while done < perLoop {
                        let n = min(batch, perLoop - done)
                        let adds = (0..<n).map { index in
                            RedisCommand("XADD", RedisArgument(stream), "*", "k", RedisArgument("task-\(loop)-\(done + index)"), "p", RedisArgument(payload), "m", "1 0 5")
                        }
                        _ = try await client.pipeline(adds)
                        let read = try await client.send("XREADGROUP", "GROUP", "g", RedisArgument("c\(loop)"), "COUNT", RedisArgument(n), "STREAMS", RedisArgument(stream), ">")
                        let ids = (read.array?.first?.array?[1].array ?? []).compactMap { $0.array?.first?.string }
                        if let newest = ids.last {
                            _ = try await client.pipeline([
                                RedisCommand(["XACK", RedisArgument(stream), "g"] + ids.map { RedisArgument($0) }),
                                RedisCommand("XTRIM", RedisArgument(stream), "MINID", "~", RedisArgument(newest)),
                            ])
                        }
                        done += max(ids.count, 1)
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Double(WallClock.monotonicNanoseconds() - start) / 1e9
        return Double(perLoop * loops) / seconds
    }

    func queueRun(client: RedisClient, payload: [UInt8]) async throws -> Measured {
        let prefix = KeyPrefix("bench\(UInt32.random(in: 0...UInt32.max)):")
        let queue = TaskQueue(client: client, name: "bench", configuration: TaskQueueConfiguration(prefix: prefix))
        let handled = Atomic<Int>(0)
        let latencies = Mutex<[Double]>([])
        let consumer = TaskConsumer(
            queue: queue,
            configuration: .init(concurrency: concurrency, batchSize: batch, parallelClaims: parallelClaims, blockTimeout: .seconds(1), maintenance: false,
                                 claimObserver: { duration, count in
                                     if count > 0 { latencies.withLock { $0.append(Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000) } }
                                 })
        ) { _ in
            handled.add(1, ordering: .relaxed)
        }
        let start = WallClock.monotonicNanoseconds()
        let run = Task { try await consumer.run() }
        var enqueued = 0
        while enqueued < tasks {
            let n = min(enqueueBatch, tasks - enqueued)
            _ = try await queue.enqueue((0..<n).map { TaskSpec(key: "t\(enqueued + $0)", payload: payload, lane: .routine) })
            enqueued += n
        }
        while handled.load(ordering: .relaxed) < tasks { try await Task.sleep(for: .milliseconds(2)) }
        // Handled is not yet completed: wait until no lane has an entry waiting or pending.
        while true {
            let stats = try await queue.stats()
            if stats.lanes.allSatisfy({ $0.depth == 0 && $0.pending == 0 }) { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        let seconds = Double(WallClock.monotonicNanoseconds() - start) / 1e9
        consumer.shutdown()
        try await run.value
        // Clean up the run's keys.
        let scan = try await client.send("KEYS", RedisArgument(prefix.value + "*"))
        let keys = (scan.array ?? []).compactMap(\.string)
        if !keys.isEmpty { try await client.send(["DEL"] + keys.map { RedisArgument($0) }) }

        let sorted = latencies.withLock { $0 }.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
        }
        return Measured(tasksPerSecond: Double(tasks) / seconds, seconds: seconds, claimP50: percentile(0.5), claimP99: percentile(0.99), claims: sorted.count)
    }
}

/// `radgrid-bench queue-worker` (hidden): a worker process for the queue chaos tests. Each
/// task sleeps a little, then completes with its effect (`HINCRBY <queue>:effects key 1`)
/// applied by the completion script; `HINCRBY <queue>:runs key 1` counts executions outside it;
/// re-deliveries record when they were re-enqueued in `<queue>:requeued`.
struct QueueWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue-worker", abstract: "Worker process for queue chaos tests.", shouldDisplay: false)

    @Option var redis: String?
    @Option var queue = "chaos"
    @Option var prefix = "rg:"
    @Option var concurrency = 8
    @Option var leaseMs = 2_000
    @Option var workMs = 20
    @Option var maxDeliveries = 10
    @Option var shutdownGraceMs = 2_000

    func run() async throws {
        LogSetup.bootstrap(level: .warning)
        let client = try RedisClient(url: RedisEndpoint.resolve(option: redis))
        let configuration = TaskQueueConfiguration(prefix: KeyPrefix(prefix), lease: .milliseconds(Int64(leaseMs)), maxDeliveries: maxDeliveries,
                                                   backoffBase: .milliseconds(50), backoffMax: .milliseconds(500))
        let taskQueue = TaskQueue(client: client, name: queue, configuration: configuration)
        let effects = taskQueue.keys.custom("effects")
        let runs = taskQueue.keys.custom("runs")
        let requeued = taskQueue.keys.custom("requeued")
        let work = workMs
        let consumer = TaskConsumer(queue: taskQueue, configuration: .init(concurrency: concurrency, blockTimeout: .seconds(2), shutdownGrace: .milliseconds(Int64(shutdownGraceMs)))) { context in
            _ = try? await client.send("HINCRBY", RedisArgument(runs), RedisArgument(context.key), "1")
            if work > 0 { try await Task.sleep(for: .milliseconds(Int64.random(in: Int64(work / 2)...Int64(work)))) }
            context.addEffect(.hincrby(effects, field: context.key))
            // A re-delivery: when its task came back to a lane (chaos tests bound this by the lease).
            if context.attempt > 1 { context.addEffect(.hset(requeued, field: context.key, value: String(context.task.enqueuedAtMs))) }
        }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { consumer.shutdown() }
            source.resume()
            return source
        }
        try await consumer.run()
        sources.forEach { $0.cancel() }
        client.shutdown()
    }
}
