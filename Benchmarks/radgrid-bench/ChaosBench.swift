import ArgumentParser
import Audit
import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import RadGridCtl
import RedisClient
import Routing
import Screening
import StudyStore
import Synchronization

/// `radgrid-bench chaos`: the local grid under fire. Studies go in over STOW-RS while a random
/// daemon (gateway, a coordinator, the router, a worker) is SIGKILLed every few seconds and
/// restarted by the supervisor, and Redis is restarted once (AOF). Then the grid settles and
/// the run is judged: every study whose commit the gateway acknowledged must be assigned
/// exactly once, none lost, none stuck, the audit chains intact.
struct ChaosBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chaos", abstract: "Studies in while daemons are killed and Redis restarts; then judge the grid.")

    @Option(help: "Studies to submit.") var studies = 200
    @Option(help: "Images per study.") var images = 6
    @Option(help: "Worker processes.") var workers = 2
    @Option(help: "Coordinator processes.") var coordinators = 2
    @Option(help: "Seconds between kills (±50 % jitter).") var killEvery = 4.0
    @Option(help: "Task lease of the workers, seconds.") var lease = 5.0
    @Option(help: "Parallel STOW-RS clients.") var clients = 4
    @Option(help: "Studies started per second (spreads the run over the kills).") var rate = 2.0
    @Option(help: "Seconds to wait for the grid to settle after the last study.") var settleTimeout = 300.0
    @Option(help: "Random seed (victims, jitter).") var seed: UInt64 = 2026
    @Flag(help: "Print one JSON object as the last line.") var json = false

    struct Kill: Sendable { var name: String; var atMs: Int64 }

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-chaos-\(getpid())").path
        var options = LocalGrid.Options(directory: dir)
        options.workers = workers
        options.coordinators = coordinators
        options.lease = lease
        options.stableAge = 30 // commits are explicit; stable age is the safety net
        options.coordinatorArguments = ["--repair-after", "2", "--live-check", String(lease), "--claim-idle", String(lease)]
        let grid = LocalGrid(options: options)
        try await grid.start()
        let started = WallClock.nowMilliseconds()
        let restarts = Locked(0)
        let supervision = Task {
            while !Task.isCancelled {
                for event in grid.supervise() { if case .restarted = event { restarts.withLock { $0 += 1 } } }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let kills = Locked<[Kill]>([])
        let submitted = Locked(0)
        let chaos = Task {
            var rng = SplitMix(seed: seed)
            var victims = ["gateway", "router"] + (1...max(1, workers)).map { "worker-\($0)" }
            victims += coordinators > 1 ? (1...coordinators).map { "coordinator-\($0)" } : ["coordinator"]
            var redisRestarted = false
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(killEvery * 1000 * (0.5 + rng.unit()))))
                if Task.isCancelled { break }
                if !redisRestarted && submitted.withLock({ $0 }) >= studies / 2 {
                    redisRestarted = true
                    kills.withLock { $0.append(Kill(name: "redis", atMs: WallClock.nowMilliseconds())) }
                    try? await grid.restartRedis()
                    continue
                }
                let name = victims[Int(rng.next() % UInt64(victims.count))]
                if grid.child(named: name)?.signal(SIGKILL) == true {
                    kills.withLock { $0.append(Kill(name: name, atMs: WallClock.nowMilliseconds())) }
                }
            }
        }

        // Studies in over STOW-RS, each retried until the gateway acknowledges its commit.
        let gateway = StowClient(baseURL: grid.gatewayURL, token: grid.token)
        let acknowledged = Locked<[StudyUID: Int64]>([:])
        // The experts at work: each assigned case is accepted and reported, which frees its
        // expert for the cases waiting for capacity (200 studies outgrow the demo roster's
        // free places otherwise, and a waiting case is not what this benchmark judges).
        // Their calls fail while Redis restarts: each failure is counted and reported, and
        // the case is tried again on the next pass.
        let readerErrors = Locked<[String: Int]>([:])
        let readers = Task {
            let client: RedisClient
            do {
                client = try RedisClient(url: grid.redisURL)
            } catch {
                readerErrors.withLock { $0["connect", default: 0] += 1 }
                return
            }
            defer { client.shutdown() }
            let store = StudyStore(client: client, prefix: options.prefix)
            let router = ExpertRouter(redis: client, prefix: options.prefix, actor: "bench")
            while !Task.isCancelled {
                for uid in acknowledged.withLock({ Array($0.keys) }) {
                    do {
                        guard let record = try await store.record(uid), let caseID = record.caseID, let expert = record.expert else { continue }
                        if record.state == .assigned { try await router.accept(caseID: caseID.rawValue, expert: expert.rawValue) }
                        if record.state == .accepted { try await router.complete(caseID: caseID.rawValue, expert: expert.rawValue, reportReference: "bench:\(uid)") }
                    } catch {
                        let code = (error as? any CodedError)?.code ?? "error"
                        readerErrors.withLock { $0[code, default: 0] += 1 }
                    }
                }
                try? await Task.sleep(for: .milliseconds(500)) // only cancellation ends it early
            }
        }
        let next = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, clients) {
                group.addTask {
                    while true {
                        let i = next.withLock { n -> Int in defer { n += 1 }; return n }
                        guard i < studies else { return }
                        let due = started + Int64(Double(i) / max(0.01, rate) * 1000)
                        let wait = due - WallClock.nowMilliseconds()
                        if wait > 0 { try? await Task.sleep(for: .milliseconds(wait)) }
                        guard let (uid, files) = try? Self.phantom(i, images: images, seed: seed) else { continue }
                        if await Self.deliver(uid: uid, files: files, to: gateway) {
                            acknowledged.withLock { $0[uid] = WallClock.nowMilliseconds() }
                        }
                        submitted.withLock { $0 += 1 }
                    }
                }
            }
        }
        chaos.cancel()
        _ = await chaos.value
        let submitEnded = WallClock.nowMilliseconds()

        // Settle: every acknowledged study assigned (or ended), or the timeout.
        let client = try RedisClient(url: grid.redisURL)
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: options.prefix)
        let committed = acknowledged.withLock { $0 }
        var records: [StudyUID: StudyRecord] = [:]
        let deadline = ContinuousClock.now + .seconds(settleTimeout)
        while ContinuousClock.now < deadline {
            records = [:]
            for uid in committed.keys { if let r = try? await store.record(uid) { records[uid] = r } }
            if records.count == committed.count && records.values.allSatisfy({ [StudyState.assigned, .accepted, .reported].contains($0.state) || $0.state.isTerminal }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        supervision.cancel()
        _ = await supervision.value
        readers.cancel()
        _ = await readers.value

        // Judge.
        let router = ExpertRouter(redis: client, prefix: options.prefix, actor: "bench")
        let assigned = records.values.filter { [.assigned, .accepted, .reported].contains($0.state) }
        let lost = committed.keys.filter { records[$0] == nil || records[$0]?.committed == false }
        let stuck = records.values.filter { ![.assigned, .accepted, .reported].contains($0.state) }
        var doubleAssigned = 0
        for record in assigned {
            guard let caseID = record.caseID, let info = try await router.caseInfo(caseID.rawValue) else { doubleAssigned += 1; continue }
            if info.expert != record.expert?.rawValue || !["offered", "accepted", "completed"].contains(info.state) { doubleAssigned += 1 }
        }
        let verification = try await AuditTrail.verify(client: client, prefix: options.prefix)
        let killList = kills.withLock { $0 }
        let stall = try await Self.longestStall(client: client, prefix: options.prefix, studies: Array(committed.keys), kills: killList)
        await grid.stop(grace: .seconds(10))

        let summary: [String: Any] = [
            "benchmark": "chaos", "studies": studies, "committed": committed.count, "assigned": assigned.count, "lost": lost.count,
            "stuck": stuck.count, "double_assigned": doubleAssigned, "audit_ok": verification.isIntact, "max_recovery_s": stall,
            "lease_s": lease, "kills": killList.count, "restarts": restarts.withLock { $0 }, "redis_restarts": killList.filter { $0.name == "redis" }.count,
            "submit_s": Double(submitEnded - started) / 1000, "images_per_study": images,
            "stuck_states": Dictionary(grouping: stuck, by: \.state.rawValue).mapValues(\.count),
            "reader_errors": readerErrors.withLock { $0 },
        ]
        print(String(format: "chaos: %d studies, %d committed, %d assigned, %d lost, %d stuck, %d double; %d kills and a Redis restart, %d restarts; audit %@; longest stall of a study hit by a kill %.1f s (lease %.0f s)",
                     studies, committed.count, assigned.count, lost.count, stuck.count, doubleAssigned, killList.filter { $0.name != "redis" }.count, restarts.withLock { $0 },
                     verification.isIntact ? "intact" : "BROKEN", stall, lease))
        if !stuck.isEmpty { print("stuck: " + stuck.prefix(10).map { "\($0.uid)=\($0.state.rawValue)" }.joined(separator: " ")) }
        if json { print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)) }
    }

    /// A small head or chest CT phantom with its own study UID.
    static func phantom(_ i: Int, images: Int, seed: UInt64) throws -> (StudyUID, [[UInt8]]) {
        var spec = PhantomSpec.small(i % 2 == 0 ? .head : .chest, lesionMM: i % 5 == 0 ? 14 : 0, seed: seed &* 1_000 &+ UInt64(i))
        spec.slices = images
        let files = try Phantom.generate(spec).dicomFiles()
        let text = "2.25.\(spec.seed % 999_999_937)0"
        return (try StudyUID(text), files)
    }

    /// Uploads and commits one study, retrying through gateway restarts and Redis restarts
    /// (a PACS does the same); true once the commit is acknowledged.
    static func deliver(uid: StudyUID, files: [[UInt8]], to gateway: StowClient) async -> Bool {
        for attempt in 0..<120 {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(min(2_000, 100 * attempt))) }
            guard let (status, _) = try? await gateway.post(path: "/studies/\(uid)", parts: files), status == 200 else { continue }
            guard let (committed, _) = try? await gateway.post(path: "/studies/\(uid)/commit", parts: nil), committed == 200 else { continue }
            return true
        }
        return false
    }

    /// The longest time a study hit by a kill went without a state change between its commit
    /// and its assignment (from its audit chain, Redis's clock), in seconds.
    static func longestStall(client: RedisClient, prefix: KeyPrefix, studies: [StudyUID], kills: [Kill]) async throws -> Double {
        var worst: Int64 = 0
        for uid in studies {
            let entries = try await AuditTrail.timeline(client: client, prefix: prefix, study: uid.rawValue)
                .filter { $0.action.hasPrefix("study.") }
            guard let commit = entries.firstIndex(where: { $0.action == "study.committed" }) else { continue }
            let end = entries.firstIndex { $0.action == "study.assigned" } ?? entries.count - 1
            guard end > commit else { continue }
            for k in commit..<end {
                let from = entries[k].timestampMilliseconds, to = entries[k + 1].timestampMilliseconds
                if kills.contains(where: { $0.atMs >= from - 1_000 && $0.atMs <= to }) { worst = max(worst, to - from) }
            }
        }
        return Double(worst) / 1000
    }
}

/// A value behind a lock that closures can share.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

/// A small seeded generator (victims and jitter are reproducible).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
