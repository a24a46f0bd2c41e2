@testable import Audit
import Crypto
import RadGridCore
import RedisClient
import TestSupport
import Testing

@Suite("Hash-chained audit trail")
struct AuditTrailTests {
    @Test func luaSHA256MatchesSwiftCryptoAcrossPaddingBoundaries() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let script = RedisScript(AuditLua.sha256)
        // Every length around the 55/56/64-byte padding edges, plus non-ASCII bytes.
        var messages = (0..<140).map { length in String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) }) }
        messages.append("Ünïcödé \u{1F9E0} study 1.2.840.113619")
        let commands = messages.map { RedisCommand.script(script, keys: [], arguments: [RedisArgument($0)]) }
        let replies = try await client.pipeline(commands)
        for (message, reply) in zip(messages, replies) {
            let expected = SHA256.hash(data: Array(message.utf8)).map { String(format: "%02x", $0) }.joined()
            #expect(reply.string == expected, "length \(message.utf8.count)")
        }
    }

    @Test func appendedEntriesVerifyAndFormATimeline() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let gateway = AuditTrail(client: client, prefix: prefix, chain: "gateway")
        let router = AuditTrail(client: client, prefix: prefix, chain: "router")
        try await gateway.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "1.2.3", details: "instances=3")
        try await gateway.append(actor: AuditActor(.site, "H2"), action: "study.received", study: "9.9.9")
        try await router.append(actor: AuditActor(.router, "r1"), action: "case.assigned", study: "1.2.3", details: "expert=e42")
        try await router.append(actor: AuditActor(.expert, "e42"), action: "case.viewed", study: "1.2.3")

        let verification = try await AuditTrail.verify(client: client, prefix: prefix)
        #expect(verification.isIntact)
        #expect(verification.chains == 2)
        #expect(verification.entries == 4)

        let timeline = try await AuditTrail.timeline(client: client, prefix: prefix, study: "1.2.3")
        #expect(timeline.map(\.action) == ["study.received", "case.assigned", "case.viewed"])
        #expect(timeline.map(\.actor) == ["site:H1", "router:r1", "expert:e42"])
        #expect(timeline[0].previousHash == AuditTrail.genesisHash)
    }

    @Test func concurrentAppendersKeepOneIntactChain() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let trail = AuditTrail(client: client, prefix: prefix, chain: "queue")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for task in 0..<40 {
                        try await trail.append(actor: AuditActor(.worker, "w\(worker)"), action: "task.completed", study: "s\(task % 5)", details: "task=\(task)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let verification = try await AuditTrail.verify(client: client, prefix: prefix)
        #expect(verification.entries == 320)
        #expect(verification.isIntact)
    }

    @Test func editedDeletedAndTruncatedEntriesAreDetected() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let trail = AuditTrail(client: client, prefix: prefix, chain: "router")
        var ids: [String] = []
        for index in 0..<6 {
            ids.append(try await trail.append(actor: AuditActor(.router, "r1"), action: "case.assigned", study: "1.2.\(index)", details: "expert=e\(index)"))
        }
        #expect(try await AuditTrail.verify(client: client, prefix: prefix).isIntact)

        // Edit: rewrite the stream with one entry's details changed (stream entries cannot be
        // modified in place, so a forger must copy the log), keeping every stored hash.
        let records = try await trail.entries()
        let forged = trail.logKey + ":forged"
        for record in records {
            let details = record.id == ids[2] ? "expert=e99" : record.details
            try await client.send("XADD", RedisArgument(forged), RedisArgument(record.id),
                                  "ts", RedisArgument(String(record.timestampMilliseconds)), "actor", RedisArgument(record.actor),
                                  "action", RedisArgument(record.action), "study", RedisArgument(record.study),
                                  "details", RedisArgument(details), "prev", RedisArgument(record.previousHash), "hash", RedisArgument(record.hash))
        }
        try await client.send("RENAME", RedisArgument(forged), RedisArgument(trail.logKey))
        let edited = try await AuditTrail.verify(client: client, prefix: prefix)
        #expect(!edited.isIntact)
        #expect(edited.problems.contains { $0.entryID == ids[2] && $0.reason.contains("edited") })

        // Delete in the middle: the next entry's link no longer matches.
        let deleteMiddle = AuditTrail(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix()), chain: "router")
        var middleIDs: [String] = []
        for index in 0..<4 { middleIDs.append(try await deleteMiddle.append(actor: AuditActor(.admin, "ops"), action: "dlq.retry", details: "n=\(index)")) }
        try await client.send("XDEL", RedisArgument(deleteMiddle.logKey), RedisArgument(middleIDs[1]))
        let deleted = try await AuditTrail.verify(client: client, prefix: deleteMiddle.prefix)
        #expect(deleted.problems.contains { $0.entryID == middleIDs[2] && $0.reason.contains("link broken") })

        // Delete the tail: every remaining link holds, but the head does not match.
        let deleteTail = AuditTrail(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix()), chain: "router")
        var tailIDs: [String] = []
        for index in 0..<3 { tailIDs.append(try await deleteTail.append(actor: AuditActor(.admin, "ops"), action: "expert.updated", details: "n=\(index)")) }
        try await client.send("XDEL", RedisArgument(deleteTail.logKey), RedisArgument(tailIDs[2]))
        let truncated = try await AuditTrail.verify(client: client, prefix: deleteTail.prefix)
        #expect(truncated.problems.count == 1)
        #expect(truncated.problems.first?.reason.contains("head") == true)
    }

    @Test func multiLineActionsAreRejectedBeforeWriting() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let trail = AuditTrail(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix()), chain: "gateway")
        await #expect(throws: RadGridError.self) { try await trail.append(actor: AuditActor(.admin, "x"), action: "a\nb") }
        #expect(try await client.send("EXISTS", RedisArgument(trail.logKey)) == .integer(0))
    }
}
