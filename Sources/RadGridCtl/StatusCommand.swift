import ArgumentParser
import Coordinator
import Foundation
import GridContract
import RadGridCLI
import RadGridCore
import RedisClient
import Routing
import StudyStore
import TaskQueue
import WorkerDaemon

/// A snapshot of the grid for `radgridctl status` / `top` (and the demo and benchmark).
public struct GridStatus: Codable, Sendable {
    public struct Worker: Codable, Sendable {
        public var name: String
        public var alive: Bool
        public var slots: Int
        public var busy: Int
        public var done: Int
        public var failed: Int
        public var tasksPerSecond: Double
        public var lastSeenMs: Int64
    }
    public struct ExpertLoad: Codable, Sendable {
        public var total: Int
        public var withWork: Int
        public var busiest: [String: Int]
        public var loadUnits: Int
        public var capacityUnits: Int
    }
    public struct Study: Codable, Sendable {
        public var uid: String
        public var state: String
        public var priority: String
        public var urgency: String
        public var instances: Int
        public var caseID: String
        public var expert: String
        public var specialty: String
        public var casePriority: String
        public var reason: String
        /// Instances that arrived after the commit (the case was routed without them).
        public var lateInstances: Int
        /// Instances that could not be read (the case was routed without them).
        public var failedInstances: Int
        public var createdMs: Int64
        public var updatedMs: Int64
        /// The pre-screen's findings, `code probability (screener@version)`, models included.
        public var findings: [String]?
        /// The models that screened the study (`name@version#sha256:…`).
        public var models: [String]?
    }

    public var queue: QueueStats
    /// The ai stage's queue (model inference); nil in status files written before it existed.
    public var modelQueue: QueueStats?
    public var workers: [Worker]
    public var studies: [String: Int]
    public var experts: ExpertLoad
    public var deadLetters: Int
    public var waitingCases: Int
    /// Turnaround of reported studies per priority and stage, and SLA breaches.
    public var turnaround: Turnaround.Summary?
    public var studyList: [Study]?

    public static func collect(client: RedisClient, prefix: KeyPrefix, queueName: String = GridKeys.taskQueue, queueShards: Int = 1,
                               listStudies: Bool = false) async throws -> GridStatus {
        let stats = try await ShardedTaskQueue(client: client, name: queueName, shardCount: queueShards, configuration: TaskQueueConfiguration(prefix: prefix)).stats()
        let modelStats = try await ShardedTaskQueue(client: client, name: GridKeys.modelQueue, shardCount: queueShards,
                                                    configuration: TaskQueueConfiguration(prefix: prefix)).stats()
        let store = StudyStore(client: client, prefix: prefix)
        let counts = try await store.countsByState()
        // Workers: the index zset, then each heartbeat hash (expired = dead).
        let index = WorkerHeartbeat.indexKey(prefix: prefix)
        let now = WallClock.nowMilliseconds()
        // Tidying only (each heartbeat prunes too), which a read-only user (the monitor role)
        // may not do; any other failure is a failure.
        do {
            _ = try await client.send("ZREMRANGEBYSCORE", RedisArgument(index), "-inf", RedisArgument(now - 3_600_000)).throwingServerError()
        } catch {
            guard error.message.hasPrefix("NOPERM") else { throw error }
        }
        let names = (try await client.send("ZRANGE", RedisArgument(index), "0", "-1", "WITHSCORES").array ?? []).map { $0.string ?? "" }
        var workers: [Worker] = []
        var pairs: [(String, Int64)] = []
        var i = 0
        while i + 1 < names.count { pairs.append((names[i], Int64(Double(names[i + 1]) ?? 0))); i += 2 }
        let hashes = try await client.pipeline(pairs.map { RedisCommand("HGETALL", RedisArgument(WorkerHeartbeat.key(prefix: prefix, name: $0.0))) })
        for ((name, seen), reply) in zip(pairs, hashes) {
            let f = (reply.fieldMap ?? [:]).compactMapValues(\.string)
            workers.append(Worker(name: name, alive: !f.isEmpty, slots: Int(f["slots"] ?? "") ?? 0, busy: Int(f["busy"] ?? "") ?? 0,
                                  done: Int(f["done"] ?? "") ?? 0, failed: Int(f["failed"] ?? "") ?? 0,
                                  tasksPerSecond: Double(f["rate"] ?? "") ?? 0, lastSeenMs: seen))
        }
        // Experts by load.
        let keys = RoutingKeys(prefix: prefix)
        let replies = try await client.pipeline([RedisCommand("HGETALL", RedisArgument(keys.load)), RedisCommand("HGETALL", RedisArgument(keys.cap)),
                                                  RedisCommand("ZCARD", RedisArgument(keys.wait))])
        let loads = (replies[0].fieldMap ?? [:]).compactMapValues { $0.string.flatMap { Int($0) } }
        let caps = (replies[1].fieldMap ?? [:]).compactMapValues { $0.string.flatMap { Int($0) } }
        let busiest = loads.filter { $0.value > 0 }.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(5)
        let experts = ExpertLoad(total: caps.count, withWork: loads.values.filter { $0 > 0 }.count, busiest: Dictionary(uniqueKeysWithValues: busiest.map { ($0.key, $0.value) }),
                                 loadUnits: loads.values.reduce(0, +), capacityUnits: caps.values.reduce(0, +))
        var list: [Study]?
        if listStudies {
            var out: [Study] = []
            for uid in try await store.allStudies(limit: 100_000) {
                guard let r = try await store.record(uid) else { continue }
                out.append(Study(uid: uid.rawValue, state: r.state.rawValue, priority: r.priority.rawValue, urgency: r.screening?.urgency.rawValue ?? "",
                                 instances: r.instances, caseID: r.caseID?.rawValue ?? "", expert: r.expert?.rawValue ?? "",
                                 specialty: r.route?.specialty ?? "", casePriority: r.route?.priority.rawValue ?? "", reason: r.failure?.code ?? "",
                                 lateInstances: r.lateInstances, failedInstances: r.screening?.failedInstances.count ?? 0,
                                 createdMs: r.createdAt, updatedMs: r.updatedAt,
                                 findings: r.screening?.findings.map { "\($0.code) \(String(format: "%.2f", $0.probability)) (\($0.source))" },
                                 models: r.screening?.models?.map(\.description)))
            }
            list = out
        }
        return GridStatus(queue: stats, modelQueue: modelStats, workers: workers, studies: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                          experts: experts, deadLetters: stats.deadLetters + modelStats.deadLetters, waitingCases: Int(replies[2].int ?? 0), turnaround: try await Turnaround(client: client, prefix: prefix).summary(), studyList: list)
    }

    public func render() -> String {
        var out: [String] = []
        out.append("QUEUE \(queue.queue)   leases \(queue.leases)   open groups \(queue.openGroups)   dead letters \(deadLetters)")
        out.append("  lane      depth  pending  delayed  oldest(ms)")
        for l in queue.lanes {
            out.append("  " + pad(l.lane, 8) + lpad(l.depth, 7) + lpad(l.pending, 9) + lpad(l.delayed, 9) + lpad(Int(l.oldestAgeMs), 12))
        }
        if let modelQueue, modelQueue.lanes.contains(where: { $0.depth + $0.pending + $0.delayed > 0 }) || modelQueue.deadLetters > 0 {
            out.append("AI QUEUE \(modelQueue.queue)   leases \(modelQueue.leases)   dead letters \(modelQueue.deadLetters)")
            for l in modelQueue.lanes where l.depth + l.pending + l.delayed > 0 {
                out.append("  " + pad(l.lane, 8) + lpad(l.depth, 7) + lpad(l.pending, 9) + lpad(l.delayed, 9) + lpad(Int(l.oldestAgeMs), 12))
            }
        }
        let alive = workers.filter(\.alive)
        out.append("WORKERS \(alive.count) alive, \(workers.count - alive.count) gone   busy \(alive.map(\.busy).reduce(0, +))/\(alive.map(\.slots).reduce(0, +)) slots   \(String(format: "%.1f", alive.map(\.tasksPerSecond).reduce(0, +))) tasks/s")
        for w in workers {
            out.append("  " + pad(w.name, 34) + (w.alive ? "alive " : "gone  ") + "busy \(w.busy)/\(w.slots)  done \(w.done)  failed \(w.failed)  \(String(format: "%.1f", w.tasksPerSecond))/s")
        }
        let order = StudyState.allCases.map(\.rawValue)
        out.append("STUDIES " + order.filter { (studies[$0] ?? 0) > 0 }.map { "\($0) \(studies[$0]!)" }.joined(separator: "  "))
        out.append("EXPERTS \(experts.total) on roster, \(experts.withWork) with work, load \(experts.loadUnits)/\(experts.capacityUnits) units, \(waitingCases) case(s) waiting")
        if !experts.busiest.isEmpty {
            out.append("  busiest: " + experts.busiest.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if let turnaround, !turnaround.reported.isEmpty {
            out.append("TURNAROUND (reported studies; p50/p95 are histogram bucket bounds, minutes)")
            out.append("  " + pad("priority", 10) + pad("reported", 10) + pad("breaches", 10) + Turnaround.Stage.allCases.map { pad($0.rawValue + " p50/p95", 30) }.joined())
            for priority in Priority.allCases.map(\.description) where turnaround.reported[priority] != nil {
                let cells = Turnaround.Stage.allCases.map { stage -> String in
                    guard let f = turnaround.stages[priority]?[stage.rawValue] else { return pad("-", 30) }
                    return pad("\(Self.minutes(f.p50Minutes))/\(Self.minutes(f.p95Minutes)) (mean \(String(format: "%.1f", f.meanMinutes)))", 30)
                }
                out.append("  " + pad(priority, 10) + pad(String(turnaround.reported[priority] ?? 0), 10) + pad(String(turnaround.breaches[priority] ?? 0), 10) + cells.joined())
            }
        }
        if let studyList {
            out.append("CASES")
            out.append("  " + pad("study", 22) + pad("state", 12) + pad("prio", 8) + pad("urgency", 10) + pad("specialty", 19) + pad("case prio", 10) + "expert")
            for s in studyList.sorted(by: { $0.createdMs < $1.createdMs }) {
                let uid = s.uid.count > 20 ? String(s.uid.prefix(20)) : s.uid
                out.append("  " + pad(uid, 22) + pad(s.state, 12) + pad(s.priority, 8) + pad(s.urgency, 10) + pad(s.specialty, 19) + pad(s.casePriority, 10) + (s.expert.isEmpty ? s.reason : s.expert))
            }
        }
        return out.joined(separator: "\n")
    }

    static func minutes(_ value: Double?) -> String { value.map { String(format: "≤%g", $0) } ?? ">\(Int(Turnaround.bucketMinutes.last!))" }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    func lpad(_ v: Int, _ n: Int) -> String { let s = String(v); return s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Queues, workers, studies by state, experts by load, dead letters.")

    @OptionGroup var redis: RedisOptions
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Also list every study with its case and expert.") var studies = false

    func run() async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        let status = try await GridStatus.collect(client: client, prefix: redis.keyPrefix, queueShards: redis.queueShards, listStudies: studies)
        if json { try printJSON(status) } else { print(status.render()) }
    }
}

struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "`status`, refreshed every second until Ctrl-C.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Seconds between refreshes.") var interval: Double = 1
    @Option(help: "Stop after this many refreshes (0 = until Ctrl-C).") var count: Int = 0

    func run() async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        var n = 0
        while count == 0 || n < count {
            let status = try await GridStatus.collect(client: client, prefix: redis.keyPrefix, queueShards: redis.queueShards)
            print("\u{1B}[H\u{1B}[2J" + "radgridctl top — \(Date())\n" + status.render())
            fflush(nil)
            n += 1
            try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
        }
    }
}
