#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Audit
import Foundation
import Gateway
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import Screening
import StudyLifecycle
import StudyStore
import Synchronization
import TaskQueue

/// `radgrid-bench scale` (issue #19): how the grid grows with more of what it is made of.
///
/// (a) Images/s of the local grid (`LocalGrid`, as `radgrid up` and `e2e` run it) with 1, 2, 4
///     `radgrid-worker` processes (from the bench's own bin directory), nothing else changed:
///     per worker count a fresh grid (fresh key prefix on `--redis`, else its own private
///     redis-server), a fixed batch of phantom CT studies stored first (intake, untimed: it is
///     the gateway's work and would take CPU from the workers), then all committed at once;
///     images/s = instances / (first commit → last study assigned, Redis's clock).
/// (b) Task queue tasks/s on one Redis node and on a Redis Cluster with the queue in shards
///     (one per master), each against its own topology's pipelined ceiling measured in the
///     same run: `queue`'s ceiling and run on the single node; on the cluster the same
///     command mix on one stream per shard's hash tag, concurrently (rates summed), and a
///     `ShardedTaskQueue` with one consumer over every shard.
struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Images/s of the local grid with 1, 2, 4 worker processes; queue tasks/s vs the pipelined ceiling on one Redis node and on a sharded Redis Cluster."
    )

    @Option(help: "Single-node Redis URL (else REDIS_URL; else every grid run starts a private redis-server, and so does the queue part).") var redis: String?
    @Option(help: "Redis Cluster URL (redis+cluster://h:p,h:p,h:p) for the sharded queue; absent: that part is skipped (null).") var cluster: String?
    /// The demo roster's experts never accept, so every study of the batch must fit their
    /// capacity at once (~185 of these head/chest CTs): few studies, many images each.
    @Option(help: "Studies in each grid run's batch (at most ~185: the demo experts' capacity).") var studies = 140
    @Option(help: "Images per study (140 × 200: ~20 s a run in release on 2 cores).") var images = 200
    @Option(help: "Matrix size of the phantoms.") var size = 128
    @Option(help: "Worker process counts, one grid run each (comma-separated).") var workers = "1,2,4"
    @Option(help: "Tasks per queue run (and per ceiling stream).") var tasks = 100_000
    @Option(help: "Rounds of ceiling + queue per topology; medians are reported.") var rounds = 3
    @Option(help: "Queue shards on the cluster (each on its own master when there are as many).") var shards = 3
    @Option(help: "Parts to run: grid, queue (comma-separated).") var parts = "grid,queue"
    @Flag(help: "Print one JSON object as the last line.") var json = false

    /// The worker's stages in the grid runs: `LocalGrid` (like `e2e`) passes no `--stages` and
    /// no `--models`, so each worker serves instance,study and an idle ai consumer.
    static let stagesNote = "worker default (instance,study,ai) without --models, as e2e: rule-based screening only, no AI models; the ai queue stays empty"

    func validate() throws {
        guard studies > 0, images > 0, tasks > 0, rounds > 0, shards > 0 else { throw ValidationError("--studies, --images, --tasks, --rounds and --shards must be positive") }
        _ = try workerCounts()
    }

    func workerCounts() throws -> [Int] {
        let counts = workers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("--workers: positive counts, comma-separated (e.g. 1,2,4)") }
        return counts.map { $0! }
    }

    func run() async throws {
        LogSetup.bootstrap(level: .warning)
        let parts = Set(self.parts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let single = redis ?? ProcessEnvironment.value(RedisEndpoint.environmentVariable).flatMap { $0.isEmpty ? nil : $0 }
        if let single {
            let configuration = try RedisConfiguration(url: single)
            guard !configuration.isCluster else {
                throw ValidationError("--redis (or REDIS_URL) names a cluster (\(Self.redact(single))); give the single node with --redis and the cluster with --cluster")
            }
        }
        if let cluster {
            let configuration = try RedisConfiguration(url: cluster)
            guard configuration.isCluster else { throw ValidationError("--cluster must be a Redis Cluster URL (redis+cluster://h:p,h:p,h:p)") }
        }
        Self.say("scale bench: \(cores) cores; single node \(single.map(Self.redact) ?? "private redis-server"); cluster \(cluster.map(Self.redact) ?? "none (skipped)")")

        var object: [String: Any] = ["benchmark": "scale", "machine_cores": cores]

        // (b) first: short, on idle servers.
        if parts.contains("queue") {
            let bench = try QueueBench.parse(["--tasks", String(tasks), "--rounds", String(rounds)])
            object["queue_settings"] = ["tasks": tasks, "rounds": rounds, "concurrency": bench.concurrency, "batch": bench.batch,
                                        "parallel_claims": bench.parallelClaims, "payload_bytes": bench.payloadBytes, "enqueue_batch": bench.enqueueBatch,
                                        "pool_per_node": try RedisConfiguration(url: single ?? RedisEndpoint.defaultURL).poolSize]
            let singleFigures = try await queueSingle(url: single, bench: bench)
            Self.say(singleFigures.summary(label: "single node"))
            object.merge(QueueFigures.fields(singleFigures, topology: "single")) { $1 }
            if let cluster {
                let clusterFigures = try await queueCluster(url: cluster, bench: bench)
                Self.say(clusterFigures.summary(label: "cluster, \(clusterFigures.shards) shards"))
                object.merge(QueueFigures.fields(clusterFigures, topology: "cluster")) { $1 }
                object["queue_cluster_vs_single"] = Self.round3(clusterFigures.tasksPerSecond / max(singleFigures.tasksPerSecond, 1))
            } else {
                Self.say("queue, cluster: skipped (no --cluster)")
                object.merge(QueueFigures.fields(nil, topology: "cluster")) { $1 }
            }
        } else {
            for key in ["queue_ratio_single", "queue_ratio_cluster"] { object[key] = NSNull() }
        }

        // (a) the local grid, one run per worker count.
        if parts.contains("grid") {
            let bin = ChildProcess.executableDirectory
            for name in ["radgrid-worker", "radgrid"] where !FileManager.default.isExecutableFile(atPath: bin + "/" + name) {
                throw BenchError.failed("\(bin)/\(name) is missing: build every product of this configuration (swift build [-c release])")
            }
            Self.say("grid: \(studies) studies × \(images) images (\(size)×\(size) CT phantoms) per run; workers from \(bin)/radgrid-worker, default slots (\(2 * cores) each), queue shards \(LocalGrid.Options(directory: "").queueShards) (LocalGrid's default); stages: \(Self.stagesNote)")
            var runs: [GridRun] = []
            for (index, count) in try workerCounts().enumerated() {
                let run = try await gridRun(workers: count, single: single, index: index)
                Self.say(run.summary)
                runs.append(run)
            }
            func byWorkers(_ value: (GridRun) -> Any) -> [String: Any] {
                Dictionary(runs.map { (String($0.workers), value($0)) }, uniquingKeysWith: { _, last in last })
            }
            let rate = Dictionary(runs.map { ($0.workers, $0.imagesPerSecond) }, uniquingKeysWith: { _, last in last })
            object["images_per_s_by_workers"] = byWorkers { Self.round1($0.imagesPerSecond) }
            object["studies_per_s_by_workers"] = byWorkers { Self.round3(Double($0.studies) / $0.seconds) }
            object["seconds_by_workers"] = byWorkers { Self.round3($0.seconds) }
            object["cores_busy_by_workers"] = byWorkers { Self.round3($0.machineBusyCores) }
            object["cpu_cores_by_role_by_workers"] = byWorkers { $0.coresByRole.mapValues(Self.round3) }
            object["intake_images_per_s_by_workers"] = byWorkers { Self.round1($0.intakeImagesPerSecond) }
            object["grid_runs"] = runs.map(\.json)
            object["grid_settings"] = ["studies": studies, "images_per_study": images, "size": size, "total_images": studies * images,
                                       "slots_per_worker": 2 * cores, "queue_shards": LocalGrid.Options(directory: "").queueShards, "stages": Self.stagesNote,
                                       "timed": "first commit -> last study assigned (Redis clock), intake before the timer"]
            object["cpu_ms_per_image_by_workers"] = byWorkers { Self.round3($0.cpuMillisecondsPerImage) }
            // What the machine allows at best: the 1-worker run's CPU per image on every core.
            if let first = runs.first(where: { $0.workers == 1 }) {
                let bound = Double(cores) / max(first.machineBusyCores, 1e-9)
                object["speedup_bound_all_cores"] = Self.round3(bound)
                Self.say(String(format: "1 worker kept %.2f of %d cores busy: with no extra cost per image, more workers could gain at most %.2f× on this machine",
                                first.machineBusyCores, cores, bound))
            }
            if let one = rate[1], let two = rate[2] {
                object["speedup_1_to_2"] = Self.round3(two / one)
                object["goal_1_to_2_met"] = two / one >= 1.7
                Self.say(String(format: "speedup 1 → 2 workers: %.2f×", two / one) + " (goal ≥ 1.7×: " + (two / one >= 1.7 ? "met" : "NOT met") + ")")
            } else {
                object["speedup_1_to_2"] = NSNull()
            }
            if let one = rate[1], let four = rate[4] { object["speedup_1_to_4"] = Self.round3(four / one) }
        } else {
            object["images_per_s_by_workers"] = NSNull()
            object["speedup_1_to_2"] = NSNull()
        }
        if json {
            Self.say(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    // MARK: - (a) The local grid

    struct GridRun {
        var workers: Int
        var studies: Int
        var images: Int
        var seconds: Double
        var pollSeconds: Double
        var intakeSeconds: Double
        var coresByRole: [String: Double]
        var machineBusyCores: Double
        var workersAlive: Int

        var imagesPerSecond: Double { Double(images) / seconds }
        /// CPU of the whole machine per image while the batch ran (ms).
        var cpuMillisecondsPerImage: Double { machineBusyCores * seconds / Double(images) * 1000 }
        var intakeImagesPerSecond: Double { Double(images) / max(intakeSeconds, 1e-9) }

        var summary: String {
            let roles = coresByRole.sorted { $0.value > $1.value }.map { $0.key + String(format: " %.2f", $0.value) }.joined(separator: ", ")
            return "  \(workers) worker\(workers == 1 ? "" : "s"): "
                + String(format: "%d images in %.2f s = %6.1f images/s, %.2f studies/s (intake before the timer: %.1f s, %.0f images/s)\n",
                         images, seconds, imagesPerSecond, Double(studies) / seconds, intakeSeconds, intakeImagesPerSecond)
                + String(format: "             cores busy %.2f of %d (%.2f ms CPU an image); by process (cores): ", machineBusyCores,
                         ProcessInfo.processInfo.activeProcessorCount, cpuMillisecondsPerImage) + roles
                + (workersAlive == workers ? "" : "  [only \(workersAlive) of \(workers) workers still running at the end]")
        }

        var json: [String: Any] {
            ["workers": workers, "studies": studies, "images": images, "seconds": ScaleBench.round3(seconds), "poll_seconds": ScaleBench.round3(pollSeconds),
             "images_per_s": ScaleBench.round1(imagesPerSecond), "intake_seconds": ScaleBench.round3(intakeSeconds),
             "cores_busy": ScaleBench.round3(machineBusyCores), "cpu_ms_per_image": ScaleBench.round3(cpuMillisecondsPerImage), "cpu_cores_by_role": coresByRole.mapValues(ScaleBench.round3), "workers_alive": workersAlive]
        }
    }

    func gridRun(workers count: Int, single: String?, index: Int) async throws -> GridRun {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-scale-\(getpid())-w\(count)").path
        var options = LocalGrid.Options(directory: dir)
        options.redisURL = single
        // A fresh prefix per run on a shared server; a private server per run otherwise.
        options.prefix = KeyPrefix(single == nil ? "rg:" : "scale\(getpid())w\(count):")
        options.workers = count
        options.slots = 0
        // The batch is stored before it is committed: no commit by stable age meanwhile.
        options.stableAge = 3600
        let grid = LocalGrid(options: options)
        try await grid.start()
        let client: RedisClient
        do { client = try RedisClient(url: grid.redisURL) } catch {
            await grid.stop(grace: .seconds(5))
            throw error
        }
        let store = StudyStore(client: client, prefix: options.prefix)
        let keys = GridKeys(prefix: options.prefix)
        let result: GridRun
        do {
            // Every worker up (heartbeat), then one study through the whole grid (warm-up).
            let deadline = Date().addingTimeInterval(60)
            while (try await client.send("ZCARD", RedisArgument(keys.workers)).int ?? 0) < count {
                guard Date() < deadline else { throw BenchError.failed("\(count) workers did not report within 60 s; see \(dir)/logs") }
                try await Task.sleep(for: .milliseconds(100))
            }
            let warmUp = try await PhantomStudy.ingest(store: store, kind: .head, size: size, slices: images, seed: UInt64(50_000 + index * 10_000))
            try await Self.commit(store: store, [warmUp])
            _ = try await waitAssigned(store: store, studies: [warmUp], timeout: 120)

            // Intake of the batch (untimed), kept uncommitted.
            let intakeStart = WallClock.monotonicNanoseconds()
            let batch = try await ingestBatch(store: store, seedBase: UInt64(51_000 + index * 10_000))
            let intakeSeconds = Double(WallClock.monotonicNanoseconds() - intakeStart) / 1e9
            try await Task.sleep(for: .milliseconds(500))

            // Timed: commit everything, until the last study is assigned.
            let redisPID = try await Self.redisPID(client: client, grid: grid)
            let before = CPUSample.take(grid: grid, redisPID: redisPID)
            let startMs = try await Self.serverMilliseconds(client)
            let pollStart = WallClock.monotonicNanoseconds()
            try await Self.commit(store: store, batch)
            let lastAssignedMs = try await waitAssigned(store: store, studies: batch, timeout: 900)
            let pollSeconds = Double(WallClock.monotonicNanoseconds() - pollStart) / 1e9
            let after = CPUSample.take(grid: grid, redisPID: redisPID)
            let seconds = Double(lastAssignedMs - startMs) / 1000
            let alive = grid.children.filter { $0.name.hasPrefix("worker") && $0.process.isRunning }.count
            result = GridRun(workers: count, studies: studies, images: studies * images, seconds: seconds > 0 ? seconds : pollSeconds, pollSeconds: pollSeconds,
                             intakeSeconds: intakeSeconds, coresByRole: after.cores(since: before), machineBusyCores: after.busyCores(since: before),
                             workersAlive: alive)
        } catch {
            client.shutdown()
            await grid.stop(grace: .seconds(5))
            throw error
        }
        await grid.stop(grace: .seconds(10))
        // The run's keys go (the server is shared with the next run).
        if single != nil {
            let all = try await client.scanKeys(matching: options.prefix.value + "*")
            for chunk in stride(from: 0, to: all.count, by: 500) {
                _ = try await client.pipeline(all[chunk..<min(all.count, chunk + 500)].map { RedisCommand("UNLINK", RedisArgument($0)) })
            }
        }
        client.shutdown()
        try? FileManager.default.removeItem(atPath: dir)
        return result
    }

    /// The batch's studies, stored (not committed) as many at once as there are cores: the
    /// phantom is made on one core, its intake prepares on every core.
    func ingestBatch(store: StudyStore, seedBase: UInt64) async throws -> [StudyUID] {
        let size = self.size, images = self.images, width = ProcessInfo.processInfo.activeProcessorCount
        var uids = [StudyUID?](repeating: nil, count: studies)
        try await withThrowingTaskGroup(of: (Int, StudyUID).self) { group in
            var next = 0
            func spec(_ i: Int) -> (PhantomSpec.Kind, UInt64) { (i % 2 == 0 ? .head : .chest, seedBase + UInt64(i)) }
            while next < min(width, studies) {
                let (kind, seed) = spec(next), i = next
                group.addTask { (i, try await PhantomStudy.ingest(store: store, kind: kind, size: size, slices: images, seed: seed)) }
                next += 1
            }
            while let (i, uid) = try await group.next() {
                uids[i] = uid
                if next < studies {
                    let (kind, seed) = spec(next), i = next
                    group.addTask { (i, try await PhantomStudy.ingest(store: store, kind: kind, size: size, slices: images, seed: seed)) }
                    next += 1
                }
            }
        }
        return uids.map { $0! }
    }


    /// Commits the studies, eight at a time.
    static func commit(store: StudyStore, _ studies: [StudyUID]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var remaining = studies.makeIterator()
            for _ in 0..<8 {
                guard let study = remaining.next() else { break }
                group.addTask { try await commitOne(store: store, study: study) }
            }
            while try await group.next() != nil {
                if let study = remaining.next() { group.addTask { try await commitOne(store: store, study: study) } }
            }
        }
    }

    static func commitOne(store: StudyStore, study: StudyUID) async throws {
        _ = try await store.handle(.commit(reason: "bench"), study: study, actor: AuditActor(.admin, "bench"), machine: StudyStateMachine())
    }

    /// Waits until every study is assigned; returns the latest assignment time (Redis's clock,
    /// ms). Only the studies not yet seen assigned are read, in one pipeline per poll. Stops
    /// with the studies' states when none moved on for `stall` seconds (the demo roster's
    /// experts never accept, so a batch larger than their capacity waits in routing).
    func waitAssigned(store: StudyStore, studies: [StudyUID], timeout: Double, stall: Double = 60) async throws -> Int64 {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = studies
        var latest: Int64 = 0
        var lastProgress = Date()
        var lastStates: [StudyState: Int] = [:]
        while true {
            let records = try await store.records(pending)
            var still: [StudyUID] = []
            var states: [StudyState: Int] = [:]
            for record in records { if let record { states[record.state, default: 0] += 1 } }
            if states != lastStates { lastProgress = Date(); lastStates = states }
            for (uid, record) in zip(pending, records) {
                guard let record else { still.append(uid); continue }
                if [.failed, .quarantined, .notRoutable].contains(record.state) {
                    throw BenchError.failed("study \(uid.rawValue) \(record.state.rawValue): \(record.failure?.code ?? "?")")
                }
                if [StudyState.assigned, .accepted, .reported].contains(record.state) {
                    // updatedAt is when it entered its state: the assignment while assigned.
                    latest = max(latest, record.updatedAt)
                } else {
                    still.append(uid)
                }
            }
            pending = still
            if pending.isEmpty { return latest }
            if Date() >= deadline || Date().timeIntervalSince(lastProgress) > stall {
                let counts = states.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
                throw BenchError.failed("\(pending.count) of \(studies.count) studies not assigned (\(counts)); "
                                      + (states[.routing, default: 0] > 0 ? "waiting in routing: more studies than the demo experts' capacity? Use fewer --studies (more --images)" : "no progress"))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func serverMilliseconds(_ client: RedisClient) async throws -> Int64 {
        let time = try await client.send("TIME").array ?? []
        guard time.count == 2, let seconds = time[0].int, let micros = time[1].int else { throw BenchError.failed("TIME: unexpected reply") }
        return seconds * 1000 + micros / 1000
    }

    /// The redis-server's pid when it runs on this machine (its own, or `INFO server`'s on localhost).
    static func redisPID(client: RedisClient, grid: LocalGrid) async throws -> pid_t? {
        if let server = grid.redisServer { return server.pid }
        guard let text = try await client.send("INFO", "server").string,
              let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("process_id:") }),
              let pid = pid_t(line.dropFirst("process_id:".count).trimmingCharacters(in: .whitespaces)) else { return nil }
        // Only if that process is a redis-server here (not a remote server's pid).
        guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8), comm.hasPrefix("redis") else { return nil }
        return pid
    }

    /// CPU time of the grid's processes, this process and the machine, from /proc.
    struct CPUSample {
        var byRole: [String: Double] = [:]
        var machineBusy: Double = 0
        var at: UInt64 = WallClock.monotonicNanoseconds()

        static func take(grid: LocalGrid, redisPID: pid_t?) -> CPUSample {
            var sample = CPUSample()
            for child in grid.children {
                let role = child.name.hasPrefix("worker") ? "workers"
                    : child.name.hasPrefix("coordinator") ? "coordinator"
                    : child.name == "router" ? "router" : "gateway+portal+dimse+auditor"
                sample.byRole[role, default: 0] += seconds(pid: child.process.pid) ?? 0
            }
            if let redisPID { sample.byRole["redis", default: 0] += seconds(pid: redisPID) ?? 0 }
            sample.byRole["bench", default: 0] += seconds(pid: getpid()) ?? 0
            sample.machineBusy = machineBusySeconds() ?? 0
            return sample
        }

        /// Cores each role kept busy between `before` and this sample.
        func cores(since before: CPUSample) -> [String: Double] {
            let elapsed = max(Double(at - before.at) / 1e9, 1e-9)
            var out: [String: Double] = [:]
            for (role, seconds) in byRole { out[role] = (seconds - (before.byRole[role] ?? 0)) / elapsed }
            return out
        }

        func busyCores(since before: CPUSample) -> Double {
            (machineBusy - before.machineBusy) / max(Double(at - before.at) / 1e9, 1e-9)
        }

        static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

        /// utime + stime of a process (all its threads), seconds.
        static func seconds(pid: pid_t) -> Double? {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ")
            // After the command: state is field 3, utime 14, stime 15.
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
            return (user + system) / ticks
        }

        /// Busy CPU time of the whole machine (every core), seconds.
        static func machineBusySeconds() -> Double? {
            guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
                  let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
            let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            guard values.count >= 5 else { return nil }
            // user nice system idle iowait irq softirq steal (guest is inside user).
            let total = values.prefix(8).reduce(0, +)
            return (total - values[3] - values[4]) / ticks
        }
    }

    // MARK: - (b) The queue

    struct QueueFigures {
        var shards = 1
        var ceilings: [Double] = []
        var runs: [Double] = []
        var extra: [String: Any] = [:]

        static func median(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
        var ceiling: Double { Self.median(ceilings) }
        var tasksPerSecond: Double { Self.median(runs) }
        var ratio: Double { tasksPerSecond / max(ceiling, 1) }
        var roundRatios: [Double] { zip(runs, ceilings).map { $0 / max($1, 1) } }

        func summary(label: String) -> String {
            "queue, \(label): " + String(format: "%.0f tasks/s vs ceiling %.0f tasks/s = %.1f %% (median of %d rounds)", tasksPerSecond, ceiling, ratio * 100, runs.count)
                + "; rounds: queue " + runs.map { String(format: "%.0f", $0) }.joined(separator: ", ")
                + "; ceiling " + ceilings.map { String(format: "%.0f", $0) }.joined(separator: ", ")
                + "; ratio " + roundRatios.map { String(format: "%.3f", $0) }.joined(separator: ", ")
        }

        /// The top-level fields of one topology's figures (`queue_<topology>`,
        /// `queue_ratio_<topology>`, …), null when the topology was not measured.
        static func fields(_ figures: QueueFigures?, topology: String) -> [String: Any] {
            [
                "queue_\(topology)": figures?.json ?? NSNull(),
                "queue_ratio_\(topology)": figures.map { ScaleBench.round3($0.ratio) } ?? NSNull(),
                "queue_tasks_per_s_\(topology)": figures.map { ScaleBench.round1($0.tasksPerSecond) } ?? NSNull(),
                "queue_ceiling_tasks_per_s_\(topology)": figures.map { ScaleBench.round1($0.ceiling) } ?? NSNull(),
            ]
        }

        var json: [String: Any] {
            var object = extra
            object["shards"] = shards
            object["tasks_per_s"] = ScaleBench.round1(tasksPerSecond)
            object["ceiling_tasks_per_s"] = ScaleBench.round1(ceiling)
            object["ratio"] = ScaleBench.round3(ratio)
            object["rounds_tasks_per_s"] = runs.map(ScaleBench.round1)
            object["rounds_ceiling_tasks_per_s"] = ceilings.map(ScaleBench.round1)
            object["rounds_ratio"] = roundRatios.map(ScaleBench.round3)
            object["ratio_median_of_rounds"] = ScaleBench.round3(Self.median(roundRatios))
            return object
        }
    }

    /// `queue`'s own ceiling and queue run (its defaults), alternated for `rounds` rounds.
    func queueSingle(url: String?, bench: QueueBench) async throws -> QueueFigures {
        var server: ChildProcess?
        var url = url
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-scale-\(getpid())-redis").path
        if url == nil {
            try Files.makeDirectories(dir, mode: 0o700)
            let started = try await BenchRedis.start(logDirectory: dir)
            server = started.process
            url = started.url
        }
        defer {
            if let server {
                server.terminate(grace: .seconds(5))
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        let client = try RedisClient(url: url!)
        defer { client.shutdown() }
        let payload = [UInt8](repeating: 0x5a, count: bench.payloadBytes)
        var figures = QueueFigures()
        for _ in 0..<rounds {
            figures.ceilings.append(try await bench.rawCeiling(client: client, payload: payload))
            figures.runs.append(try await bench.queueRun(client: client, payload: payload).tasksPerSecond)
        }
        figures.extra["ceiling"] = "queue's rawCeiling: \(client.configuration.poolSize) loops on one stream"
        return figures
    }

    /// The sharded queue on a cluster against the same raw mix on one stream per shard tag.
    func queueCluster(url: String, bench: QueueBench) async throws -> QueueFigures {
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let payload = [UInt8](repeating: 0x5a, count: bench.payloadBytes)

        // Slot → master, from CLUSTER SLOTS.
        var ranges: [(low: Int, high: Int, master: String)] = []
        for range in try await client.send("CLUSTER", "SLOTS").throwingServerError().array ?? [] {
            guard let parts = range.array, parts.count >= 3, let low = parts[0].int, let high = parts[1].int,
                  let node = parts[2].array, node.count >= 2, let host = node[0].string, let port = node[1].int else { continue }
            ranges.append((Int(low), Int(high), "\(host):\(port)"))
        }
        let masters = Set(ranges.map(\.master))
        func master(ofKey key: String) -> String? {
            let slot = ClusterSlot.of(key)
            return ranges.first { $0.low <= slot && slot <= $0.high }?.master
        }
        // A queue name whose shards' hash tags fall on distinct masters (as many as there are).
        let wanted = min(shards, masters.count)
        var chosen: (name: String, masters: [String])?
        for attempt in 0..<1000 {
            let name = attempt == 0 ? "bench" : "bench\(attempt)"
            let owners = (0..<shards).map { master(ofKey: QueueKeys(prefix: KeyPrefix("x:"), name: ShardedTaskQueue.shardName(name, index: $0)).state) }
            let found = owners.compactMap { $0 }
            if found.count == shards, Set(found).count == wanted { chosen = (name, found); break }
        }
        guard let chosen else { throw BenchError.failed("no queue name found whose \(shards) shard tags fall on \(wanted) distinct masters") }
        let tags = (0..<shards).map { "{q:\(ShardedTaskQueue.shardName(chosen.name, index: $0))}" }
        Self.say("queue, cluster: \(masters.count) masters; queue '\(chosen.name)': " + zip(tags, chosen.masters).map { "\($0) slot \(ClusterSlot.of($0)) on \($1)" }.joined(separator: ", "))

        var figures = QueueFigures(shards: shards)
        var perStream: [[Double]] = []
        var distribution: [Int] = []
        for _ in 0..<rounds {
            let (total, streams) = try await clusterCeiling(client: client, name: chosen.name, payload: payload, bench: bench)
            figures.ceilings.append(total)
            perStream.append(streams)
            let (rate, counts) = try await shardedQueueRun(client: client, name: chosen.name, payload: payload, bench: bench)
            figures.runs.append(rate)
            distribution = counts
        }
        figures.extra = [
            "masters": masters.count, "queue_name": chosen.name, "shard_tags": tags, "shard_masters": chosen.masters,
            "shard_slots": tags.map { ClusterSlot.of($0) }, "tasks_per_shard": distribution,
            "rounds_ceiling_per_stream": perStream.map { $0.map(ScaleBench.round1) },
            "ceiling": "queue's raw mix on \(shards) streams (one per shard tag), \(client.configuration.poolSize) loops each, concurrently; rates summed",
        ]
        return figures
    }

    /// One stream per shard tag, each with `poolSize` loops (the node's pool), all at once;
    /// returns the summed rate and each stream's.
    func clusterCeiling(client: RedisClient, name: String, payload: [UInt8], bench: QueueBench) async throws -> (Double, [Double]) {
        let prefix = KeyPrefix("benchraw\(UInt32.random(in: 0...UInt32.max)):")
        let streams = (0..<shards).map { QueueKeys(prefix: prefix, name: ShardedTaskQueue.shardName(name, index: $0)).base + "raw" }
        for stream in streams { try await client.send("XGROUP", "CREATE", RedisArgument(stream), "g", "0", "MKSTREAM") }
        var rates = [Double](repeating: 0, count: streams.count)
        let tasks = self.tasks, batch = bench.batch
        try await withThrowingTaskGroup(of: (Int, Double).self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask { (index, try await QueueBench.rawMix(client: client, stream: stream, tasks: tasks, batch: batch, payload: payload)) }
            }
            for try await (index, rate) in group { rates[index] = rate }
        }
        for stream in streams { try await client.send("DEL", RedisArgument(stream)) }
        return (rates.reduce(0, +), rates)
    }


    /// `QueueBench.queueRun` on a `ShardedTaskQueue`: tasks spread over the shards by a fake
    /// study id each, one consumer over every shard with `queue`'s settings. Tasks/s, and the
    /// tasks each shard got.
    func shardedQueueRun(client: RedisClient, name: String, payload: [UInt8], bench: QueueBench) async throws -> (Double, [Int]) {
        let prefix = KeyPrefix("bench\(UInt32.random(in: 0...UInt32.max)):")
        let sharded = ShardedTaskQueue(client: client, name: name, shardCount: shards, configuration: TaskQueueConfiguration(prefix: prefix))
        let handled = Atomic<Int>(0)
        let consumer = TaskConsumer(
            queues: sharded.shards,
            configuration: .init(concurrency: bench.concurrency, batchSize: bench.batch, parallelClaims: bench.parallelClaims, blockTimeout: .seconds(1), maintenance: false)
        ) { _ in
            handled.add(1, ordering: .relaxed)
        }
        func study(_ spec: TaskSpec) -> String { "1.2.826.0.1.3680043.10.1019.\(spec.key.dropFirst())" }
        var counts = [Int](repeating: 0, count: sharded.shards.count)
        let start = WallClock.monotonicNanoseconds()
        let run = Task { try await consumer.run() }
        var enqueued = 0
        while enqueued < tasks {
            let n = min(bench.enqueueBatch, tasks - enqueued)
            let specs = (0..<n).map { TaskSpec(key: "t\(enqueued + $0)", payload: payload, lane: .routine) }
            for spec in specs { counts[ShardedTaskQueue.shardIndex(study(spec), count: sharded.shards.count)] += 1 }
            _ = try await sharded.enqueue(specs, routingKey: study)
            enqueued += n
        }
        while handled.load(ordering: .relaxed) < tasks { try await Task.sleep(for: .milliseconds(2)) }
        // Handled is not yet completed: wait until no lane of any shard has an entry waiting or pending.
        while true {
            var idle = true
            for shard in sharded.shards {
                let stats = try await shard.stats()
                if !stats.lanes.allSatisfy({ $0.depth == 0 && $0.pending == 0 }) {
                    idle = false
                    break
                }
            }
            if idle { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        let seconds = Double(WallClock.monotonicNanoseconds() - start) / 1e9
        consumer.shutdown()
        try await run.value
        // Clean up the run's keys (every master; one key per DEL, so no DEL crosses slots).
        let keys = try await client.scanKeys(matching: prefix.value + "*")
        for chunk in stride(from: 0, to: keys.count, by: 500) {
            _ = try await client.pipeline(keys[chunk..<min(keys.count, chunk + 500)].map { RedisCommand("DEL", RedisArgument($0)) })
        }
        return (Double(tasks) / seconds, counts)
    }

    // MARK: - Helpers

    /// One line to stdout at once (unbuffered: progress shows through a pipe, e.g. bench.sh's tee).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func round1(_ value: Double) -> Double { (value * 10).rounded() / 10 }
    static func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    /// A URL without its password, for the output.
    static func redact(_ url: String) -> String {
        (try? RedisConfiguration(url: url).redactedURL) ?? url
    }
}
