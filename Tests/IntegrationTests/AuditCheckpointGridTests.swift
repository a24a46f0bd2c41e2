import Audit
import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import StudyStore
import Testing
import TestSupport

/// `radgrid up --dir DIR` signs audit checkpoints into DIR/audit/checkpoints with the public
/// key in DIR/audit/checkpoint.pub; `radgridctl audit checkpoint` adds one at once and
/// `radgridctl audit verify --checkpoints … --public-key …` exits non-zero once a study's
/// chain is deleted from Redis with its head and registration.
@Suite(.serialized) struct AuditCheckpointGridTests {
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func theGridSignsCheckpointsAndVerifyCatchesADeletedChain() async throws {
        let (server, grid, work) = try await EdgeGridTests.startGrid("audit-checkpoints")
        defer { server.stop(); for child in grid.children { _ = child.process.signal(SIGKILL) }; try? FileManager.default.removeItem(atPath: work) }
        let folder = try EdgeGridTests.phantom(seed: 641, slices: 3, in: work + "/a")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)) }
        #expect(try await EdgeGridTests.stow(grid.gatewayURL, token: grid.token, files: files, priority: nil).status == 200)
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        let study = try #require(try await store.allStudies().first)
        #expect(try await EdgeGridTests.commit(grid.gatewayURL, token: grid.token, study: study.rawValue) == 200)
        _ = try await EdgeGridTests.waitAssigned(store, count: 1, work: work)

        // The auditor's first checkpoint, the key pair with its modes.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, ((try? FileManager.default.contentsOfDirectory(atPath: grid.auditCheckpoints)) ?? []).filter({ $0.hasSuffix(".jsonl") }).isEmpty {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: grid.auditCheckpoints)) ?? []).contains { $0.hasSuffix(".jsonl") })
        let keyPath = work + "/grid/audit/checkpoint.key"
        #expect((try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int) == 0o600)
        #expect(FileManager.default.fileExists(atPath: grid.auditPublicKey))

        let common = ["--redis", server.url, "--prefix", "rg:"]
        let checkpoint = try Self.ctl(["audit", "checkpoint", "--checkpoints", grid.auditCheckpoints, "--key", keyPath, "--public-key", grid.auditPublicKey] + common, work: work)
        #expect(checkpoint.status == 0, "\(checkpoint.output)")
        let verify = ["audit", "verify", "--checkpoints", grid.auditCheckpoints, "--public-key", grid.auditPublicKey] + common
        let intact = try Self.ctl(verify, work: work)
        #expect(intact.status == 0 && intact.output.contains("intact"), "\(intact.output)")

        // Delete the study's chain with its head and its registration: only the checkpoints know.
        let trail = AuditTrail(client: client, prefix: KeyPrefix("rg:"), chain: AuditTrail.studyChainPrefix + study.rawValue)
        _ = try await client.send("DEL", RedisArgument(trail.logKey), RedisArgument(trail.headKey))
        _ = try await client.send("SREM", RedisArgument(trail.chainsKey), RedisArgument(trail.chain))
        let tampered = try Self.ctl(verify, work: work)
        #expect(tampered.status == 2 && tampered.output.contains(trail.chain) && tampered.output.contains("TAMPERED"), "\(tampered.output)")
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
    }

    static func ctl(_ arguments: [String], work: String) throws -> (status: Int32?, output: String) {
        let out = work + "/ctl-\(UUID().uuidString).log"
        let process = try ChildProcess(executable: GridEndToEndTests.binDir + "/radgridctl", arguments: arguments, outputPath: out)
        let status = process.wait(timeout: .seconds(60))
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }
}
