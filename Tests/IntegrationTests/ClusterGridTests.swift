import Audit
import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import Screening
import RedisClient
import Routing
import StudyStore
import Testing
import TestSupport

/// The whole grid as processes on a Redis Cluster of 3 masters and 3 replicas, with the task
/// queues in 3 shards and durable writes (`?wait=1`): the master that serves a queue shard is
/// killed mid-run, a replica takes over, and every committed study still reaches exactly one
/// expert.
@Suite(.serialized) struct ClusterGridTests {
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func aMasterKilledMidRunLosesAndDoublesNoStudy() async throws {
        let studyCount = GridEndToEndTests.soak ? 40 : 10
        let cluster = try await RedisTestCluster.start()
        let url = cluster.url + "?wait=1&waitTimeout=1000"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-cluster-\(UUID().uuidString)").path
        var options = LocalGrid.Options(directory: work + "/grid")
        options.redisURL = url
        options.prefix = KeyPrefix("rg:")
        options.workers = 2
        options.slots = 2
        options.experts = 100
        options.stableAge = 2
        options.binDirectory = GridEndToEndTests.binDir
        options.queueShards = 3
        let grid = LocalGrid(options: options)
        try await grid.start()
        var stopped = false
        defer { if !stopped { for c in grid.children { _ = c.process.signal(SIGKILL) } } }

        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let keys = GridKeys(prefix: KeyPrefix("rg:"))
        let shardNames = GridKeys.queueNames(GridKeys.taskQueue, shards: 3)
        let queueMaster = try await cluster.master(ofSlot: ClusterSlot.of(keys.deadLetterStream(queue: shardNames[0])))
        let log = work + "/submit.log"
        var killedAt: Int?
        for i in 0..<studyCount {
            var spec = PhantomSpec.small(i % 2 == 0 ? .head : .chest, lesionMM: 0, seed: UInt64(7000 + i))
            spec.slices = min(spec.slices, 6)
            let dir = "\(work)/s\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (k, bytes) in try Phantom.generate(spec).dicomFiles().enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(k).dcm")) }
            // An uploader retries a refused upload: while the promoted master has no replica
            // yet, durable writes are refused (`redis.notReplicated`) rather than risked.
            var submitted = false
            for _ in 0..<20 where !submitted {
                let submit = try ChildProcess(executable: GridEndToEndTests.binDir + "/radgridctl",
                                              arguments: ["submit", dir, "--priority", "routine", "--redis", url, "--prefix", "rg:", "--site", "H001"], outputPath: log)
                submitted = submit.wait(timeout: .seconds(60)) == 0
                if !submitted { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(submitted, "submit \(i) failed; see \(log)")
            if i == studyCount / 3 {
                // The queue's master dies with work in flight; its replica is promoted, and a
                // fresh node replaces the dead one as the new master's replica.
                cluster.kill(port: queueMaster)
                killedAt = i
                var successor = queueMaster
                let failoverDeadline = ContinuousClock.now + .seconds(20)
                while successor == queueMaster && ContinuousClock.now < failoverDeadline {
                    try await Task.sleep(for: .milliseconds(100))
                    successor = try await cluster.master(ofSlot: ClusterSlot.of(keys.deadLetterStream(queue: shardNames[0])))
                }
                #expect(successor != queueMaster, "no replica took over")
                try await cluster.waitUntilHealthy()
                try await cluster.replaceAsReplica(port: queueMaster, of: successor)
                // The replacement knows the roles' users (an operator installs the ACL file).
                var roleNode = try RedisConfiguration(url: grid.redisURL(for: .worker))
                roleNode.clusterSeeds = []
                roleNode.endpoint = .tcp(host: "127.0.0.1", port: queueMaster)
                let roleClient = RedisClient(configuration: roleNode)
                defer { roleClient.shutdown() }
                let pong = try await roleClient.send("PING")
                #expect(pong.string == "PONG")
            }
        }
        #expect(killedAt != nil)

        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        let uids = try await store.allStudies()
        #expect(uids.count == studyCount, "committed studies: \(uids.count) of \(studyCount)")
        let deadline = ContinuousClock.now + .seconds(GridEndToEndTests.soak ? 240 : 90)
        var records: [StudyRecord] = []
        while ContinuousClock.now < deadline {
            records = try await uids.asyncMap { try await store.record($0)! }
            if records.allSatisfy({ [StudyState.assigned, .failed, .quarantined].contains($0.state) }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        let unfinished = records.filter { $0.state != .assigned }.map { "\($0.uid)=\($0.state.rawValue)" }
        #expect(unfinished.isEmpty, "studies not assigned: \(unfinished); logs in \(work)/grid/logs")

        // Exactly once: one assignment in each study's audit chain, one in the router's trail.
        let router = ExpertRouter(redis: client, prefix: KeyPrefix("rg:"), actor: "test")
        var routerAssignments: [String: Int] = [:]
        var after = "-"
        while true {
            let entries = try await router.auditEntries(after: after, count: 1000)
            for entry in entries where entry.action == "offer" { routerAssignments[entry.caseID, default: 0] += 1 }
            guard let last = entries.last else { break }
            after = last.id
        }
        for record in records where record.state == .assigned {
            let actions = try await store.audit(record.uid).entries().map(\.action)
            #expect(actions.filter { $0 == "study.assigned" }.count == 1, "\(record.uid): \(actions)")
            let caseID = try #require(record.caseID)
            #expect(routerAssignments[caseID.rawValue] == 1, "case \(caseID): \(routerAssignments[caseID.rawValue] ?? 0) assignments")
            #expect(try await router.caseInfo(caseID.rawValue)?.expert == record.expert?.rawValue)
        }
        #expect(try await AuditTrail.verify(client: client, prefix: KeyPrefix("rg:")).isIntact)
        // The studies' work was spread over the shards (by study), each in its own slot.
        var usedShards = 0
        for name in shardNames where try await client.send("LLEN", RedisArgument("rg:{q:\(name)}:completed")).int ?? 0 > 0 { usedShards += 1 }
        #expect(usedShards >= 2, "tasks ran in \(usedShards) of 3 shards")
        await grid.stop(grace: .seconds(10))
        stopped = true
        if unfinished.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }
}
