import Audit
import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import Routing
import Screening
import StudyStore
import Testing
import TestSupport

/// The whole grid as real processes (router, coordinator, two workers, gateway) against a
/// private redis-server: mixed phantom studies over STOW-RS and the CLI, one worker killed
/// with SIGKILL mid-run; every study must reach an eligible expert, critical findings as
/// STAT, and the audit chains must verify (and catch a tampered entry).
@Suite(.serialized) struct GridEndToEndTests {
    static var binDir: String {
        ProcessInfo.processInfo.environment["RADGRID_BIN_DIR"] ?? Corpus.packageRoot.appendingPathComponent(".build/debug").path
    }
    static var built: Bool {
        ["radgrid", "radgrid-worker", "radgridctl"].allSatisfy { FileManager.default.isExecutableFile(atPath: binDir + "/" + $0) }
    }
    static var soak: Bool { ProcessInfo.processInfo.environment["RADGRID_SOAK"] == "1" }

    struct Planned { var dir: String; var lesion: Bool; var kind: PhantomSpec.Kind; var priority: String; var gateway: Bool }

    @Test(.enabled(if: built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func studiesFlowToEligibleExpertsDespiteAWorkerCrash() async throws {
        let studyCount = Self.soak ? 48 : 12
        // Its own server, or under make test's cluster phase the private cluster (with 3 queue
        // shards): the same run, end to end, on a Redis Cluster.
        let clusterURL = ProcessInfo.processInfo.environment["RADGRID_TEST_REDIS_URL"].flatMap { $0.hasPrefix("redis+cluster://") ? $0 : nil }
        let server: RedisTestServer? = clusterURL == nil ? try await RedisTestServer.start() : nil
        defer { server?.stop() }
        let redisURL = clusterURL ?? server!.url
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        var options = LocalGrid.Options(directory: work + "/grid")
        options.redisURL = redisURL
        if clusterURL != nil { options.queueShards = 3 }
        options.prefix = KeyPrefix("rg:")
        options.workers = 2
        options.slots = 2
        options.experts = 600
        options.stableAge = 2
        options.binDirectory = Self.binDir
        // The grid's own models: every head and chest study also goes through the ai stage.
        options.models = Corpus.packageRoot.appendingPathComponent("Ops/models").path
        let grid = LocalGrid(options: options)
        try await grid.start()
        var stopped = false
        defer { if !stopped { for c in grid.children { _ = c.process.signal(SIGKILL) } } }

        // Phantoms: small head/chest CT, half with a lesion, some urgent; half over STOW-RS.
        var plans: [Planned] = []
        for i in 0..<studyCount {
            let kind: PhantomSpec.Kind = i % 2 == 0 ? .head : .chest
            let lesion = i % 3 == 0
            var spec = PhantomSpec.small(kind, lesionMM: lesion ? (kind == .head ? 16 : 14) : 0, seed: UInt64(5000 + i))
            spec.slices = Self.soak ? spec.slices : min(spec.slices, 8)
            spec.sliceSpacing = kind == .head ? 10 : 6
            let phantom = Phantom.generate(spec)
            let dir = "\(work)/s\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (k, bytes) in try phantom.dicomFiles().enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(k).dcm")) }
            plans.append(Planned(dir: dir, lesion: lesion, kind: kind, priority: i % 4 == 1 ? "urgent" : "routine", gateway: i % 2 == 1))
        }
        let log = work + "/submit.log"
        for (i, plan) in plans.enumerated() {
            var args = ["submit", plan.dir, "--priority", plan.priority, "--redis", redisURL, "--prefix", "rg:"]
            args += plan.gateway ? ["--gateway", grid.gatewayURL, "--token", grid.token] : ["--site", "H001"]
            let submit = try ChildProcess(executable: Self.binDir + "/radgridctl", arguments: args, outputPath: log)
            #expect(submit.wait(timeout: .seconds(30)) == 0, "submit \(i) failed; see \(log)")
            if i == studyCount / 3 {
                // Crash a worker mid-run: its leased tasks must be reclaimed by the other one.
                let victim = try #require(grid.child(named: "worker-1"))
                #expect(victim.signal(SIGKILL))
                // The supervisor notices and restarts it after its backoff (1 s).
                var events: [LocalGrid.ChildEvent] = []
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline && !events.contains(where: { if case .restarted("worker-1", _) = $0 { true } else { false } }) {
                    events += grid.supervise()
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(events.contains { if case .exited("worker-1", 137, _) = $0 { true } else { false } }, "\(events)")
                #expect(grid.child(named: "worker-1")?.isRunning == true)
            }
        }

        let client = try RedisClient(url: redisURL)
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        let uids = try await store.allStudies()
        #expect(uids.count == studyCount)
        // Wait for every study to reach an expert (lease of the killed worker: 30 s).
        let deadline = ContinuousClock.now + .seconds(Self.soak ? 240 : 75)
        var records: [StudyRecord] = []
        while ContinuousClock.now < deadline {
            records = try await uids.asyncMap { try await store.record($0)! }
            if records.allSatisfy({ [StudyState.assigned, .accepted, .reported, .failed, .quarantined].contains($0.state) }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        let unfinished = records.filter { $0.state != .assigned }.map { "\($0.uid)=\($0.state.rawValue)" }
        #expect(unfinished.isEmpty, "studies not assigned: \(unfinished); logs in \(work)/grid/logs")

        // Every assignment went to an eligible expert: specialty covers the case, credentialed.
        let router = ExpertRouter(redis: client, prefix: KeyPrefix("rg:"), actor: "test")
        for record in records where record.state == .assigned {
            let caseID = try #require(record.caseID)
            let info = try #require(try await router.caseInfo(caseID.rawValue))
            let expertID = try #require(info.expert)
            #expect(record.expert?.rawValue == expertID)
            let expert = try #require(try await router.expertState(expertID)).expert
            let specialty = try Specialty(info.specialty)
            #expect(expert.specialties.contains { $0.covers(specialty) }, "expert \(expertID) cannot read \(info.specialty)")
            let now = WallClock.nowMilliseconds()
            #expect(expert.credentials.contains { $0.isValid(at: now) && ($0.scope == record.site.rawValue || $0.scope == "region:" + (info.region ?? "-")) })
            // Critical findings go out as STAT; urgent studies at least urgent.
            if record.screening?.urgency == .critical { #expect(info.priority == "stat") }
            if record.priority == .urgent { #expect(info.priority == "stat" || info.priority == "urgent") }
        }
        // The ai stage screened every head and chest study with its model, named with version and checksum.
        for record in records where record.screening != nil {
            let names = (record.screening?.models ?? []).map(\.name)
            #expect(names.count == 1 && (names[0] == "ct-head-hyperdensity-cnn" || names[0] == "ct-chest-nodule-cnn"), "models \(names)")
            #expect(record.screening?.models?.allSatisfy { $0.sha256.count == 64 && !$0.version.isEmpty } == true)
        }
        let lesions = plans.filter(\.lesion).count
        let flagged = records.filter { ($0.screening?.urgency ?? .routine) != .routine }.count
        #expect(flagged >= 1 && lesions >= 1, "no lesion phantom was flagged by the screeners")

        // What came through the gateway is sealed at rest (the workers opened it to get this
        // far); `submit --site` writes straight into Redis without keys.
        var sealedStudies = 0
        for uid in uids {
            let blobs = try await store.instanceUIDs(uid).asyncMap { try await client.send("GET", RedisArgument(store.keys.study(uid).blob($0))).bytes ?? [] }
            if !blobs.isEmpty, blobs.allSatisfy({ $0.starts(with: Array("RGB1".utf8)) }) { sealedStudies += 1 }
        }
        #expect(sealedStudies >= max(1, plans.filter(\.gateway).count), "studies sent over STOW-RS are not sealed at rest")

        // The audit chains verify; a tampered entry is detected.
        #expect(try await AuditTrail.verify(client: client, prefix: KeyPrefix("rg:")).isIntact)
        let trail = store.audit(uids[0])
        let entries = try await trail.entries()
        #expect(entries.count >= 4)
        let forged = trail.logKey + ":forged"
        for (k, r) in entries.enumerated() {
            _ = try await client.send("XADD", RedisArgument(forged), RedisArgument(r.id), "ts", RedisArgument(String(r.timestampMilliseconds)),
                                      "actor", RedisArgument(r.actor), "action", RedisArgument(k == 1 ? "study.failed" : r.action),
                                      "study", RedisArgument(r.study), "details", RedisArgument(r.details), "prev", RedisArgument(r.previousHash), "hash", RedisArgument(r.hash))
        }
        _ = try await client.send("RENAME", RedisArgument(forged), RedisArgument(trail.logKey))
        let verification = try await AuditTrail.verify(client: client, prefix: KeyPrefix("rg:"))
        #expect(!verification.isIntact)
        #expect(verification.problems.contains { $0.entryID == entries[1].id })

        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
        stopped = true
        #expect(grid.children.allSatisfy { !$0.process.isRunning })
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
