@testable import Audit
import Crypto
import Foundation
import RadGridCore
import RedisClient
import TestSupport
import Testing

/// Audit archives: old entries leave Redis for hash-linked zstd segments, the chains still
/// verify (alone, against the archive, against signed checkpoints), and every way of tampering
/// with the segments or with Redis's side of the link is caught.
@Suite("Audit archives")
struct AuditArchiveTests {
    struct Fixture {
        let client: RedisClient
        let prefix: KeyPrefix
        let directory: String
        let checkpoints: String
        let key: CheckpointKey
        let publicKey: Curve25519.Signing.PublicKey

        static func make() async throws -> Fixture {
            let client = try RedisClient(url: try await TestRedis.url())
            let root = NSTemporaryDirectory() + "audit-archive-\(UUID().uuidString)"
            try Files.makeDirectories(root, mode: 0o700)
            let key = try CheckpointKey.loadOrCreate(privateKeyPath: root + "/checkpoint.key", publicKeyPath: root + "/checkpoint.pub")
            return Fixture(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix()), directory: root + "/archive", checkpoints: root + "/checkpoints",
                           key: key, publicKey: try CheckpointKey.publicKey(path: root + "/checkpoint.pub"))
        }

        func trail(_ chain: String) -> AuditTrail { AuditTrail(client: client, prefix: prefix, chain: chain) }

        @discardableResult
        func append(_ trail: AuditTrail, _ range: Range<Int>, studies: Int = 3) async throws -> [String] {
            var ids: [String] = []
            for n in range {
                ids.append(try await trail.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "1.2.\(n % studies)",
                                                  details: "n=\(n);" + String(repeating: "x", count: 80)))
            }
            return ids
        }

        /// A cut-off after every entry appended so far and before any appended next (stream ids
        /// carry Redis's clock, so it is read from Redis).
        func cutoff() async throws -> Int64 {
            let time = try await client.send("TIME").array ?? []
            let milliseconds = (time.first?.int ?? 0) * 1000 + (time.last?.int ?? 0) / 1000 + 1
            try await Task.sleep(for: .milliseconds(5))
            return milliseconds
        }

        func archive(before: Int64, segmentEntries: Int = AuditArchive.defaultSegmentEntries,
                     stopAt: AuditArchive.StopPoint? = nil) async throws -> AuditArchiveResult {
            try await AuditArchive.archive(client: client, prefix: prefix, directory: directory, beforeMilliseconds: before,
                                           segmentEntries: segmentEntries, stopAt: stopAt)
        }

        func checkpoint() async throws {
            try await AuditCheckpoints.write(client: client, prefix: prefix, directory: checkpoints, key: key)
        }

        func chainProblems() async throws -> [AuditVerification.Problem] {
            try await AuditTrail.verify(client: client, prefix: prefix).problems
        }

        func archiveProblems() async throws -> [AuditVerification.Problem] {
            try await AuditArchive.verify(directory: directory, client: client, prefix: prefix).problems
        }

        func checkpointProblems(archive: Bool = true) async throws -> [AuditVerification.Problem] {
            try await AuditCheckpoints.verify(client: client, prefix: prefix, directory: checkpoints, publicKey: publicKey,
                                              archive: archive ? directory : nil).problems
        }

        /// Everything `radgridctl audit verify --archive --checkpoints` checks.
        func allProblems() async throws -> [AuditVerification.Problem] {
            try await chainProblems() + archiveProblems() + checkpointProblems()
        }

        func segments(_ chain: String) -> AuditArchive.Listing {
            AuditArchive.listing(AuditArchive.chainDirectory(directory, chain: chain))
        }

        func segmentPath(_ chain: String, _ sequence: Int) throws -> String {
            let segment = try #require(segments(chain).segments.first { $0.manifest.sequence == sequence })
            return AuditArchive.chainDirectory(directory, chain: chain) + "/" + segment.manifest.file
        }

        /// `gateway`: 30 entries archived in three segments of ten, five live after them.
        func archivedInThreeSegments() async throws -> AuditTrail {
            let gateway = trail("gateway")
            try await append(gateway, 0..<30)
            let cut = try await cutoff()
            try await append(gateway, 30..<35)
            let result = try await archive(before: cut, segmentEntries: 10)
            #expect(result.segments == 3 && result.entries == 30 && result.problems.isEmpty, "\(result)")
            #expect(try await chainProblems().isEmpty)
            #expect(try await archiveProblems().isEmpty)
            return gateway
        }
    }

    @Test func archivedChainsVerifyAloneAgainstTheArchiveAndAgainstCheckpoints() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let gateway = f.trail("gateway")
        let study = f.trail("s:1.2.3")
        try await f.append(gateway, 0..<20)
        for n in 0..<5 {
            try await study.append(actor: AuditActor(.router, "r1"), action: "case.event", study: "1.2.3", details: "n=\(n)")
        }
        try await f.checkpoint()
        let cut = try await f.cutoff()
        try await f.append(gateway, 20..<25)

        let result = try await f.archive(before: cut)
        #expect(result.chains == 2 && result.segments == 2 && result.entries == 25 && result.problems.isEmpty, "\(result)")
        try await f.checkpoint()
        let problems = try await f.allProblems()
        #expect(problems.isEmpty, "\(problems)")

        // The study chain went to the archive whole: its signed entry can only be checked there.
        let blind = try await f.checkpointProblems(archive: false)
        #expect(blind.contains { $0.chain == "s:1.2.3" && $0.reason.contains("archived") }, "\(blind)")

        // A chain archived to its end goes on from its anchor.
        try await study.append(actor: AuditActor(.router, "r1"), action: "case.event", study: "1.2.3", details: "n=5")
        try await f.checkpoint()
        let after = try await f.allProblems()
        #expect(after.isEmpty, "\(after)")
        let live = try await study.entries()
        let anchor = try #require(try await study.archiveAnchor())
        #expect(live.count == 1 && live[0].previousHash == anchor.hash)
    }

    @Test func archivedEntriesLeaveRedisAndTheFilesHoldThemExactly() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let gateway = f.trail("gateway")
        let ids = try await f.append(gateway, 0..<600)
        let original = try await gateway.entries()
        let cut = try await f.cutoff()
        try await f.append(gateway, 600..<610)
        let lengthBefore = try await f.client.send("XLEN", RedisArgument(gateway.logKey)).int ?? 0
        let memoryBefore = try await f.client.send("MEMORY", "USAGE", RedisArgument(gateway.logKey), "SAMPLES", "0").int ?? 0

        let result = try await f.archive(before: cut)
        #expect(result.entries == 600 && result.segments == 1)

        let lengthAfter = try await f.client.send("XLEN", RedisArgument(gateway.logKey)).int ?? 0
        let memoryAfter = try await f.client.send("MEMORY", "USAGE", RedisArgument(gateway.logKey), "SAMPLES", "0").int ?? 0
        #expect(lengthBefore == 610 && lengthAfter == 10)
        #expect(memoryAfter * 4 < memoryBefore, "stream memory \(memoryBefore) → \(memoryAfter)")
        let live = try await gateway.entries()
        #expect(live.allSatisfy { !ids.contains($0.id) })
        // The study indexes keep only live entries (600..609 with n % 3 == 0: 600, 603, 606, 609).
        #expect(try await f.client.send("ZCARD", RedisArgument(gateway.studyKey("1.2.0"))).int == 4)

        let anchor = try #require(try await gateway.archiveAnchor())
        #expect(anchor.id == ids[599] && anchor.hash == original[599].hash && anchor.count == 600 && anchor.segments == 1)
        let listing = f.segments("gateway")
        #expect(listing.segments.count == 1 && listing.segments[0].manifest.file == "\(ids[0])-\(ids[599]).ndjson.zst")
        let archived = try AuditArchive.decodeSegment(Array(try Data(contentsOf: URL(fileURLWithPath: try f.segmentPath("gateway", 1)))))
        #expect(archived == original)
        #expect(AuditArchive.record(directory: f.directory, chain: "gateway", id: ids[300]) == original[300])
        let attributes = try FileManager.default.attributesOfItem(atPath: try f.segmentPath("gateway", 1))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func aSecondRunContinuesTheLinkedSegments() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let admin = f.trail("admin")
        try await f.append(admin, 0..<30)
        let first = try await f.cutoff()
        try await f.append(admin, 30..<60)
        let second = try await f.cutoff()
        try await f.append(admin, 60..<65)

        let one = try await f.archive(before: first, segmentEntries: 12)
        #expect(one.segments == 3 && one.entries == 30)
        let two = try await f.archive(before: second, segmentEntries: 12)
        #expect(two.segments == 3 && two.entries == 30)
        let again = try await f.archive(before: second, segmentEntries: 12)
        #expect(again.segments == 0 && again.entries == 0, "a run with nothing old enough changes nothing")

        let segments = f.segments("admin").segments
        #expect(segments.map(\.manifest.sequence) == Array(1...6))
        #expect(segments.map(\.manifest.count) == [12, 12, 6, 12, 12, 6])
        #expect(segments[0].manifest.previousHash == AuditTrail.genesisHash && segments[0].manifest.previousManifest == AuditTrail.genesisHash)
        for (previous, next) in zip(segments, segments.dropFirst()) {
            #expect(next.manifest.previousHash == previous.manifest.lastHash)
            #expect(next.manifest.previousManifest == previous.sha256)
        }
        let anchor = try #require(try await admin.archiveAnchor())
        #expect(anchor.count == 60 && anchor.segments == 6 && anchor.manifest == segments[5].sha256)
        let problems = try await f.chainProblems() + f.archiveProblems()
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func anEditedEntryInASegmentIsCaught() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        _ = try await f.archivedInThreeSegments()
        let path = try f.segmentPath("gateway", 2)
        var records = try AuditArchive.decodeSegment(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        records[3].details = "n=13;edited"
        try Data(try AuditArchive.encodeSegment(records)).write(to: URL(fileURLWithPath: path))

        #expect(try await f.chainProblems().isEmpty, "Redis alone cannot see the archive")
        let problems = try await f.archiveProblems()
        #expect(problems.contains { $0.entryID == records[3].id && $0.reason.contains("the entry was edited") }, "\(problems)")
        #expect(problems.contains { $0.reason.contains("SHA-256") }, "\(problems)")
    }

    @Test func aDeletedSegmentIsCaught() async throws {
        let middle = try await Fixture.make()
        defer { middle.client.shutdown() }
        _ = try await middle.archivedInThreeSegments()
        let path = try middle.segmentPath("gateway", 2)
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.removeItem(atPath: String(path.dropLast(AuditArchive.segmentSuffix.count)) + AuditArchive.manifestSuffix)
        let gap = try await middle.archiveProblems()
        #expect(gap.contains { $0.reason.contains("removed") } && gap.contains { $0.reason.contains("link") }, "\(gap)")

        // The last segment gone: the archive ends before Redis's anchor.
        let last = try await Fixture.make()
        defer { last.client.shutdown() }
        _ = try await last.archivedInThreeSegments()
        let lastPath = try last.segmentPath("gateway", 3)
        try FileManager.default.removeItem(atPath: lastPath)
        try FileManager.default.removeItem(atPath: String(lastPath.dropLast(AuditArchive.segmentSuffix.count)) + AuditArchive.manifestSuffix)
        let short = try await last.archiveProblems()
        #expect(short.contains { $0.reason.contains("anchor") } && short.contains { $0.reason.contains("does not continue") }, "\(short)")
    }

    @Test func swappedSegmentsAreCaught() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        _ = try await f.archivedInThreeSegments()
        // The files trade places under each other's names.
        let one = try f.segmentPath("gateway", 1), two = try f.segmentPath("gateway", 2)
        try FileManager.default.moveItem(atPath: one, toPath: one + ".swap")
        try FileManager.default.moveItem(atPath: two, toPath: one)
        try FileManager.default.moveItem(atPath: one + ".swap", toPath: two)
        let problems = try await f.archiveProblems()
        #expect(problems.contains { $0.reason.contains("edited or replaced") }, "\(problems)")
        #expect(problems.contains { $0.reason.contains("link broken") || $0.reason.contains("span") }, "\(problems)")

        // Segment and manifest swapped as pairs (names and all): the sequence and links break.
        let g = try await Fixture.make()
        defer { g.client.shutdown() }
        _ = try await g.archivedInThreeSegments()
        let directory = AuditArchive.chainDirectory(g.directory, chain: "gateway")
        let listing = g.segments("gateway")
        var first = listing.segments[0].manifest, second = listing.segments[1].manifest
        (first.sequence, second.sequence) = (second.sequence, first.sequence)
        try Data(try AuditArchive.manifestData(first)).write(to: URL(fileURLWithPath: directory + "/" + listing.segments[0].manifestFile))
        try Data(try AuditArchive.manifestData(second)).write(to: URL(fileURLWithPath: directory + "/" + listing.segments[1].manifestFile))
        let reordered = try await g.archiveProblems()
        #expect(reordered.contains { $0.reason.contains("reordered") }, "\(reordered)")
    }

    @Test func aDeletedRedisAnchorIsCaught() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let gateway = try await f.archivedInThreeSegments()
        _ = try await f.client.send("DEL", RedisArgument(gateway.archiveKey))
        let chain = try await f.chainProblems()
        #expect(chain.contains { $0.chain == "gateway" && $0.reason.contains("link broken") }, "\(chain)")
        let archive = try await f.archiveProblems()
        #expect(archive.contains { $0.chain == "gateway" && $0.reason.contains("no archive anchor") }, "\(archive)")
        // And no run archives on top of an archive Redis no longer knows about.
        let cut = try await f.cutoff()
        let refused = try await f.archive(before: cut)
        #expect(refused.entries == 0 && refused.problems.contains { $0.chain == "gateway" }, "\(refused)")
    }

    @Test func aRedisEntryChangedAfterTheAnchorIsCaught() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let gateway = try await f.archivedInThreeSegments()
        let live = try await gateway.entries()

        // Edited in place (a forger copies the stream; entries cannot be changed in Redis).
        try await rewrite(gateway, live, client: f.client) { n, record in
            if n == 0 { record.details = "n=30;edited" }
        }
        let edited = try await f.chainProblems()
        #expect(edited.contains { $0.entryID == live[0].id && $0.reason.contains("edited") }, "\(edited)")

        // Relinked to genesis and rehashed from there on, head included: the chain no longer
        // continues from the anchor, and Redis no longer continues the archive.
        var previous = AuditTrail.genesisHash
        try await rewrite(gateway, live, client: f.client) { _, record in
            record.previousHash = previous
            record.hash = AuditTrail.hash(record)
            previous = record.hash
        }
        _ = try await f.client.send("SET", RedisArgument(gateway.headKey), RedisArgument(previous))
        let relinked = try await f.chainProblems()
        #expect(relinked.contains { $0.entryID == live[0].id && $0.reason.contains("link broken") }, "\(relinked)")
        let archive = try await f.archiveProblems()
        #expect(archive.contains { $0.entryID == live[0].id && $0.reason.contains("does not continue") }, "\(archive)")
    }

    @Test func aRunStoppedBetweenFilesAndRedisIsFinishedWithoutDuplicatesOrLosses() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let gateway = f.trail("gateway")
        try await f.append(gateway, 0..<25)
        let cut = try await f.cutoff()
        try await f.append(gateway, 25..<28)
        let original = try await gateway.entries()

        // Stopped after the manifest: the segment is complete on disk, Redis untouched.
        await #expect(throws: RadGridError.self) { try await f.archive(before: cut, stopAt: .afterManifest) }
        #expect(try await f.client.send("XLEN", RedisArgument(gateway.logKey)).int == 28)
        #expect(try await gateway.archiveAnchor() == nil)
        #expect(f.segments("gateway").segments.count == 1)
        #expect(try await f.chainProblems().isEmpty)
        let ahead = try await f.archiveProblems()
        #expect(!ahead.isEmpty, "the archive is ahead of Redis until a run finishes it")

        let finished = try await f.archive(before: cut)
        #expect(finished.entries == 25 && finished.segments == 0 && finished.problems.isEmpty, "\(finished)")
        let listing = f.segments("gateway")
        #expect(listing.segments.count == 1 && listing.segmentFiles.count == 1)
        let archived = try AuditArchive.decodeSegment(Array(try Data(contentsOf: URL(fileURLWithPath: try f.segmentPath("gateway", 1)))))
        let stillLive = try await gateway.entries()
        #expect(archived + stillLive == original, "every entry exactly once")
        var problems = try await f.chainProblems() + f.archiveProblems()
        #expect(problems.isEmpty, "\(problems)")

        // Stopped after the segment file alone: no manifest names it, so the next run replaces it.
        try await f.append(gateway, 28..<32)
        let later = try await f.cutoff()
        try await f.append(gateway, 32..<33)
        await #expect(throws: RadGridError.self) { try await f.archive(before: later, stopAt: .afterSegmentFile) }
        #expect(f.segments("gateway").segmentFiles.count == 2 && f.segments("gateway").segments.count == 1)
        #expect(try await f.archiveProblems().contains { $0.reason.contains("no manifest") })
        let resumed = try await f.archive(before: later)
        #expect(resumed.entries == 7 && resumed.segments == 1, "\(resumed)")
        let after = f.segments("gateway")
        #expect(after.segments.count == 2 && after.segmentFiles.count == 2 && after.temporaryFiles.isEmpty)
        #expect(try await f.client.send("XLEN", RedisArgument(gateway.logKey)).int == 1)
        problems = try await f.chainProblems() + f.archiveProblems()
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func aCheckpointedEntryMissingFromTheArchiveIsCaught() async throws {
        let f = try await Fixture.make()
        defer { f.client.shutdown() }
        let study = f.trail("s:9.9.9")
        for n in 0..<4 {
            try await study.append(actor: AuditActor(.router, "r1"), action: "case.event", study: "9.9.9", details: "n=\(n)")
        }
        try await f.checkpoint()
        let cut = try await f.cutoff()
        #expect(try await f.archive(before: cut).entries == 4)
        #expect(try await f.checkpointProblems().isEmpty)
        // The chain's archive removed: Redis's anchor alone vouches for nothing.
        try FileManager.default.removeItem(atPath: AuditArchive.chainDirectory(f.directory, chain: "s:9.9.9"))
        let gone = try await f.checkpointProblems()
        #expect(gone.contains { $0.chain == "s:9.9.9" && $0.reason.contains("gone") }, "\(gone)")
        let missing = try await f.archiveProblems()
        #expect(missing.contains { $0.chain == "s:9.9.9" && $0.reason.contains("holds no segment") }, "\(missing)")
        // And the anchor removed too: the chain is empty against its checkpoint, its head dangles.
        _ = try await f.client.send("DEL", RedisArgument(study.archiveKey))
        let empty = try await f.checkpointProblems()
        #expect(empty.contains { $0.chain == "s:9.9.9" && $0.reason.contains("empty") }, "\(empty)")
        #expect(try await f.chainProblems().contains { $0.chain == "s:9.9.9" && $0.reason.contains("head") })
    }

    /// Replaces the stream with a copy of `records` changed by `change` (same ids).
    func rewrite(_ trail: AuditTrail, _ records: [AuditRecord], client: RedisClient,
                 _ change: (Int, inout AuditRecord) -> Void) async throws {
        let forged = trail.logKey + ":forged"
        for (n, original) in records.enumerated() {
            var record = original
            change(n, &record)
            try await client.send("XADD", RedisArgument(forged), RedisArgument(record.id),
                                  "ts", RedisArgument(String(record.timestampMilliseconds)), "actor", RedisArgument(record.actor),
                                  "action", RedisArgument(record.action), "study", RedisArgument(record.study),
                                  "details", RedisArgument(record.details), "prev", RedisArgument(record.previousHash), "hash", RedisArgument(record.hash))
        }
        try await client.send("RENAME", RedisArgument(forged), RedisArgument(trail.logKey))
    }
}
