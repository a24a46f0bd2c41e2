@testable import Audit
import Crypto
import Foundation
import RadGridCore
import RedisClient
import TestSupport
import Testing

/// Signed checkpoints outside Redis catch what the chains alone cannot: a chain deleted with
/// its head and registration, a chain truncated and re-headed, a chain recomputed from edited
/// entries; and edited or removed checkpoints.
@Suite("Signed audit checkpoints")
struct AuditCheckpointTests {
    struct Fixture {
        let client: RedisClient
        let prefix: KeyPrefix
        let directory: String
        let key: CheckpointKey
        let publicKey: Curve25519.Signing.PublicKey

        static func make() async throws -> Fixture {
            let client = try RedisClient(url: try await TestRedis.url())
            let directory = NSTemporaryDirectory() + "checkpoints-\(UUID().uuidString)"
            try Files.makeDirectories(directory, mode: 0o700)
            let key = try CheckpointKey.loadOrCreate(privateKeyPath: directory + "/../\(UUID().uuidString).key", publicKeyPath: directory + ".pub")
            return Fixture(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix()), directory: directory + "/log", key: key,
                           publicKey: try CheckpointKey.publicKey(path: directory + ".pub"))
        }

        /// Two chains of three entries each, checkpointed.
        func seed() async throws -> (AuditTrail, AuditTrail) {
            let gateway = AuditTrail(client: client, prefix: prefix, chain: "gateway")
            let study = AuditTrail(client: client, prefix: prefix, chain: "s:1.2.3")
            for n in 0..<3 {
                try await gateway.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "1.2.\(n)")
                try await study.append(actor: AuditActor(.router, "r1"), action: "case.event", study: "1.2.3", details: "n=\(n)")
            }
            try await AuditCheckpoints.write(client: client, prefix: prefix, directory: directory, key: key)
            return (gateway, study)
        }

        func problems() async throws -> [AuditVerification.Problem] {
            try await AuditCheckpoints.verify(client: client, prefix: prefix, directory: directory, publicKey: publicKey).problems
        }
    }

    @Test func intactChainsVerifyAndLaterCheckpointsHoldOnlyWhatChanged() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let (gateway, _) = try await fixture.seed()
        #expect(try await fixture.problems().isEmpty)
        try await gateway.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "1.2.9")
        let second = try await AuditCheckpoints.write(client: fixture.client, prefix: fixture.prefix, directory: fixture.directory, key: fixture.key)
        #expect(second.sequence == 2 && Array(second.chains.keys) == ["gateway"] && second.chains["gateway"]?.length == 4)
        let (count, problems) = try await AuditCheckpoints.verify(client: fixture.client, prefix: fixture.prefix, directory: fixture.directory, publicKey: fixture.publicKey)
        #expect(count == 2 && problems.isEmpty, "\(problems)")
        // Appending after the last checkpoint is what chains do: still intact.
        try await gateway.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "1.2.10")
        #expect(try await fixture.problems().isEmpty)
    }

    @Test func aChainDeletedWithItsHeadAndRegistrationIsCaught() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let (_, study) = try await fixture.seed()
        _ = try await fixture.client.send("DEL", RedisArgument(study.logKey), RedisArgument(study.headKey))
        _ = try await fixture.client.send("SREM", RedisArgument(study.chainsKey), RedisArgument(study.chain))
        // The chains alone look fine: nothing registered is broken.
        #expect(try await AuditTrail.verify(client: fixture.client, prefix: fixture.prefix).isIntact)
        let problems = try await fixture.problems()
        #expect(problems.contains { $0.chain == "s:1.2.3" && $0.reason.contains("gone") }, "\(problems)")
    }

    @Test func aTruncatedAndReheadedChainIsCaught() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let (gateway, _) = try await fixture.seed()
        let entries = try await gateway.entries()
        _ = try await fixture.client.send("XDEL", RedisArgument(gateway.logKey), RedisArgument(entries[2].id))
        _ = try await fixture.client.send("SET", RedisArgument(gateway.headKey), RedisArgument(entries[1].hash))
        #expect(try await AuditTrail.verify(client: fixture.client, prefix: fixture.prefix).isIntact, "a clean truncation passes the chain check")
        let problems = try await fixture.problems()
        #expect(problems.contains { $0.chain == "gateway" && $0.reason.contains("truncated") }, "\(problems)")
    }

    @Test func aRecomputedChainIsCaught() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let (gateway, _) = try await fixture.seed()
        // Rewrite the chain with the first entry edited and every hash recomputed, same ids.
        let entries = try await gateway.entries()
        _ = try await fixture.client.send("DEL", RedisArgument(gateway.logKey))
        var previous = AuditTrail.genesisHash
        for (n, entry) in entries.enumerated() {
            let study = n == 0 ? "9.9.9" : entry.study
            let hash = AuditTrail.hash(previous: previous, timestampMilliseconds: entry.timestampMilliseconds, actor: entry.actor, action: entry.action,
                                       study: study, details: entry.details)
            _ = try await fixture.client.send(["XADD", RedisArgument(gateway.logKey), RedisArgument(entry.id), "ts", RedisArgument(String(entry.timestampMilliseconds)),
                                               "actor", RedisArgument(entry.actor), "action", RedisArgument(entry.action), "study", RedisArgument(study),
                                               "details", RedisArgument(entry.details), "prev", RedisArgument(previous), "hash", RedisArgument(hash)])
            previous = hash
        }
        _ = try await fixture.client.send("SET", RedisArgument(gateway.headKey), RedisArgument(previous))
        #expect(try await AuditTrail.verify(client: fixture.client, prefix: fixture.prefix).isIntact, "a recomputed chain passes the chain check")
        let problems = try await fixture.problems()
        #expect(problems.contains { $0.chain == "gateway" && $0.reason.contains("recomputed") }, "\(problems)")
    }

    @Test func aDeletedHeadIsCaught() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let (gateway, _) = try await fixture.seed()
        _ = try await fixture.client.send("DEL", RedisArgument(gateway.headKey))
        let problems = try await fixture.problems()
        #expect(problems.contains { $0.chain == "gateway" && $0.reason.contains("head") }, "\(problems)")
    }

    @Test func editedRemovedOrForeignCheckpointsAreCaught() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let (gateway, _) = try await fixture.seed()
        for n in 0..<2 {
            try await gateway.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "2.\(n)")
            try await AuditCheckpoints.write(client: fixture.client, prefix: fixture.prefix, directory: fixture.directory, key: fixture.key)
        }
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: fixture.directory).first { $0.hasSuffix(".jsonl") })
        let path = fixture.directory + "/" + file
        let original = try String(contentsOfFile: path, encoding: .utf8)
        var lines = original.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        // An edited length: the signature no longer holds.
        try (lines[0].replacingOccurrences(of: "\"length\":3", with: "\"length\":2") + "\n" + lines[1...].joined(separator: "\n") + "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await fixture.problems().contains { $0.reason.contains("signature") })
        // A checkpoint taken out of the middle: the sequence and the links break.
        lines.remove(at: 1)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let removed = try await fixture.problems()
        #expect(removed.contains { $0.reason.contains("removed") } && removed.contains { $0.reason.contains("link") }, "\(removed)")
        // The intact file under another key: every signature fails.
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        let other = Curve25519.Signing.PrivateKey().publicKey
        let foreign = try await AuditCheckpoints.verify(client: fixture.client, prefix: fixture.prefix, directory: fixture.directory, publicKey: other).problems
        #expect(foreign.filter { $0.reason.contains("signature") }.count == 3)
        #expect(try await fixture.problems().isEmpty)
    }

    @Test func anEmptyCheckpointDirectoryIsAProblemNotAPass() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let problems = try await fixture.problems()
        #expect(problems.contains { $0.reason.contains("no checkpoint") })
    }
}
