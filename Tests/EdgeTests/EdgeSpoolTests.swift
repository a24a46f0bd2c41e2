import DICOMWeb
import Foundation
import GridContract
import Logging
import SQLite
import Screening
import Testing
@testable import Edge

/// The spool on a real file system and a real SQLite database: durability across reopening,
/// limits, ordering, crash recovery, and how upstream answers settle a batch.
@Suite struct EdgeSpoolTests {
    let directory = NSTemporaryDirectory() + "edge-spool-\(UUID().uuidString)"

    static func study(seed: UInt64, slices: Int = 3) throws -> (study: StudyUID, files: [[UInt8]]) {
        var spec = PhantomSpec.small(.head, seed: seed)
        spec.slices = slices
        let files = try Phantom.generate(spec).dicomFiles()
        let intake = EdgeIntake(spool: try EdgeSpool(directory: NSTemporaryDirectory() + "edge-probe-\(UUID().uuidString)"), logger: Logger(label: "test"))
        guard case .success(let (study, _, _)) = intake.check(files[0], expectedStudy: nil, expectedInstance: nil) else {
            throw EdgeError(.invalidInstance, "phantom not readable")
        }
        return (study, files)
    }

    func intake(limit: Int64 = 1 << 30) throws -> EdgeIntake {
        var settings = EdgeSpool.Settings()
        settings.limitBytes = limit
        settings.reserveBytes = 0
        return EdgeIntake(spool: try EdgeSpool(directory: directory, settings: settings), logger: Logger(label: "test"))
    }

    func objectFiles() -> [String] {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: "\(directory)/objects")) ?? []).flatMap { folder in
            ((try? fm.contentsOfDirectory(atPath: "\(directory)/objects/\(folder)")) ?? []).map { "\(folder)/\($0)" }
        }
    }

    @Test func acceptedInstancesSurviveReopeningWithPrivateModes() async throws {
        let (study, files) = try Self.study(seed: 1)
        let outcomes = try await intake().accept(files, priority: .routine, expectedStudy: study)
        #expect(outcomes.allSatisfy { if case .stored = $0 { true } else { false } })
        // A new process opening the same directory sees everything.
        let reopened = try EdgeSpool(directory: directory)
        let status = try await reopened.status()
        #expect(status.queued == 1 && status.instances.queued == 3 && status.forwarded == 0)
        #expect(status.spoolBytes == Int64(files.reduce(0) { $0 + $1.count }))
        #expect(objectFiles().count == 3)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        let object = try FileManager.default.attributesOfItem(atPath: "\(directory)/objects/\(objectFiles()[0])")
        #expect((object[.posixPermissions] as? Int) == 0o600)
        #expect(try EdgeStatus.read(spool: directory).instances.queued == 3)
    }

    @Test func aSecondCopyOfAnInstanceIsNotSpooledTwice() async throws {
        let (study, files) = try Self.study(seed: 2)
        let edge = try intake()
        _ = await edge.accept(files, priority: .routine, expectedStudy: study)
        let again = await edge.accept([files[0]], priority: .routine, expectedStudy: study)
        guard case .stored = again[0] else { Issue.record("a re-send must be acknowledged"); return }
        let status = try await edge.spool.status()
        #expect(status.instances.queued == 3)
        #expect(edge.spool.bytesHeld == Int64(files.reduce(0) { $0 + $1.count }))
    }

    @Test func aFullSpoolRefusesWithoutKeepingAnything() async throws {
        let (study, files) = try Self.study(seed: 3)
        let edge = try intake(limit: Int64(files[0].count + files[1].count))
        let first = await edge.accept(Array(files[0..<2]), priority: .routine, expectedStudy: study)
        #expect(first.allSatisfy { if case .stored = $0 { true } else { false } })
        let third = await edge.accept([files[2]], priority: .routine, expectedStudy: study)
        guard case .refused(_, _, let reason, let error) = third[0] else { Issue.record("a full spool must refuse"); return }
        #expect(reason == .outOfResources && error.codeValue == .spoolFull)
        #expect(try await edge.spool.status().instances.queued == 2)
        #expect(objectFiles().count == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/tmp").isEmpty)
    }

    @Test func unreadableAndMismatchedInstancesAreRefusedWithTheirReason() async throws {
        let (study, files) = try Self.study(seed: 4)
        let edge = try intake()
        let outcomes = await edge.accept([Array("not dicom at all".utf8), files[0]], priority: .routine,
                                         expectedStudy: try StudyUID("1.2.3.4"))
        guard case .refused(_, _, let unreadable, _) = outcomes[0], case .refused(_, _, let mismatch, _) = outcomes[1] else {
            Issue.record("both must be refused"); return
        }
        #expect(unreadable == .cannotUnderstand && mismatch == .dataSetDoesNotMatchSOPClass)
        #expect(try await edge.spool.status().instances.queued == 0)
        _ = study
    }

    @Test func aStatStudyOvertakesARoutineBacklogAndOnlyCompleteStudiesGo() async throws {
        let routine = try Self.study(seed: 5, slices: 4)
        let stat = try Self.study(seed: 6, slices: 2)
        let receiving = try Self.study(seed: 7, slices: 2)
        let edge = try intake()
        _ = await edge.accept(routine.files, priority: .routine, expectedStudy: routine.study)
        _ = await edge.accept(receiving.files, priority: .stat, expectedStudy: receiving.study)
        _ = await edge.accept(stat.files, priority: .stat, expectedStudy: stat.study)
        try await edge.spool.markComplete([routine.study, stat.study], reason: "association-release")
        let first = try #require(try await edge.spool.claim(maxBytes: 1 << 30, maxInstances: 100))
        #expect(first.study == stat.study.rawValue && first.priority == .stat && first.items.count == 2)
        let second = try #require(try await edge.spool.claim(maxBytes: routine.files[0].count, maxInstances: 100))
        #expect(second.study == routine.study.rawValue && second.items.count == 1, "batches stop at the byte limit")
        // The study still receiving is not sent until it is complete.
        _ = try await edge.spool.claim(maxBytes: 1 << 30, maxInstances: 100)
        #expect(try await edge.spool.claim(maxBytes: 1 << 30, maxInstances: 100) == nil)
        #expect(try await edge.spool.status().inFlight == 2)
    }

    @Test func aCrashReturnsClaimsToTheQueueAndRemovesStrayFiles() async throws {
        let (study, files) = try Self.study(seed: 8)
        do {
            let edge = try intake()
            _ = await edge.accept(files, priority: .routine, expectedStudy: study)
            try await edge.spool.markComplete([study], reason: "explicit")
            _ = try #require(try await edge.spool.claim(maxBytes: 1 << 30, maxInstances: 100))
            #expect(try await edge.spool.status().instances.inFlight == 3)
        }
        // What a crash between the file's rename and the index's commit leaves behind.
        try FileManager.default.createDirectory(atPath: "\(directory)/objects/00", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: "\(directory)/objects/00/stray.dcm", contents: Data([1, 2, 3])))
        #expect(FileManager.default.createFile(atPath: "\(directory)/tmp/half-written", contents: Data([1])))
        #expect(objectFiles().count == 4)
        let reopened = try EdgeSpool(directory: directory)
        let status = try await reopened.status()
        #expect(status.instances.queued == 3 && status.instances.inFlight == 0)
        #expect(objectFiles().count == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/tmp").isEmpty)
    }

    @Test func settlingForwardsRefusesAndRetriesThenCommitsOnce() async throws {
        let (study, files) = try Self.study(seed: 9)
        let edge = try intake()
        _ = await edge.accept(files, priority: .urgent, expectedStudy: study)
        try await edge.spool.markComplete([study], reason: "explicit")
        let batch = try #require(try await edge.spool.claim(maxBytes: 1 << 30, maxInstances: 100))
        let sops = batch.items.map(\.sop)
        try await edge.spool.settle(batch, forwarded: [sops[0]], failed: [sops[1]: "0xC000 cannot understand"], retryAfter: 0)
        #expect(try await edge.spool.studiesToCommit().isEmpty, "one instance is still to send")
        let retry = try #require(try await edge.spool.claim(maxBytes: 1 << 30, maxInstances: 100))
        #expect(retry.items.map(\.sop) == [sops[2]])
        try await edge.spool.settle(retry, forwarded: [sops[2]], failed: [:], retryAfter: 0)
        #expect(try await edge.spool.studiesToCommit() == [study])
        try await edge.spool.markCommitted(study)
        #expect(try await edge.spool.studiesToCommit().isEmpty)
        let status = try await edge.spool.status()
        #expect(status.failed == 1 && status.instances.forwarded == 2 && status.failures.first?.reason == "0xC000 cannot understand")
        #expect(objectFiles().count == 1, "forwarded files are deleted, the failed one kept")
        // A re-send of an instance already forwarded is acknowledged and leaves no file behind.
        let forwardedFile = try #require(files.first { file in
            if case .success(let (_, sop, _)) = edge.check(file, expectedStudy: nil, expectedInstance: nil) { return sop.rawValue == sops[0] }
            return false
        })
        guard case .stored = await edge.accept([forwardedFile], priority: .urgent, expectedStudy: study)[0] else { Issue.record("a re-send must be acknowledged"); return }
        #expect(objectFiles().count == 1)
        #expect(try await edge.spool.retryFailed() == 1)
        #expect(try await edge.spool.status().queued == 1)
    }

    @Test func upstreamAnswersAreJudgedPerInstance() throws {
        let batch = EdgeSpool.Batch(study: "1.2.3", priority: .routine, items: ["1.1", "1.2", "1.3"].map { .init(sop: $0, path: "", bytes: 1) })
        var reply = StowResponse(retrieveURL: nil)
        reply.stored.append(.init(sopClassUID: "1.2.840.10008.5.1.4.1.1.2", sopInstanceUID: "1.1", retrieveURL: nil))
        reply.failed.append(.init(sopClassUID: nil, sopInstanceUID: "1.2", reason: 0xC000, comment: "unreadable"))
        reply.failed.append(.init(sopClassUID: nil, sopInstanceUID: "1.3", reason: 0xA700, comment: "busy"))
        let outcome = UploadOutcome.judge(status: 202, body: reply.json(), retryAfter: nil, batch: batch)
        #expect(outcome == .answered(forwarded: ["1.1"], failed: ["1.2": "0xC000 unreadable"], transient: true))
        #expect(UploadOutcome.judge(status: 503, body: [], retryAfter: 5, batch: batch) == .linkFailure("the upstream is busy or failing (HTTP 503)", retryAfter: 5))
        #expect(UploadOutcome.judge(status: 413, body: [], retryAfter: nil, batch: batch) == .tooLarge)
        guard case .answered(let none, let refused, false) = UploadOutcome.judge(status: 403, body: Array(#"{"error":{"code":"gateway.forbidden"}}"#.utf8), retryAfter: nil, batch: batch) else {
            Issue.record("a 403 refuses the batch"); return
        }
        #expect(none.isEmpty && refused.count == 3 && refused["1.1"]?.contains("gateway.forbidden") == true)
    }

    /// `--max-mbps`: two uploads sharing a 4 Mbit/s cap cannot move 1 MB in less than ~2 s
    /// (a lower bound only: a slow machine cannot make it fail).
    @Test func theBandwidthCapIsSharedByParallelUploads() async throws {
        let throttle = Throttle(bytesPerSecond: 4_000_000 / 8)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var count = 0
                    for try await chunk in ThrottledBytes(bytes: [UInt8](repeating: 7, count: 500_000), throttle: throttle) { count += chunk.readableBytes }
                    return count
                }
            }
            var total = 0
            for try await count in group { total += count }
            #expect(total == 1_000_000)
        }
        #expect(ContinuousClock.now - started >= .milliseconds(1_800))
    }

    @Test func sqliteErrorsAreTypedAndNameNoValues() throws {
        let db = try SQLiteDatabase(path: "\(directory)-plain.db")
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES (?)", ["secret-value"])
        #expect(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES (?)", ["secret-value"]) }
        do {
            try db.run("INSERT INTO t VALUES (?)", ["secret-value"])
        } catch let error as SQLiteError {
            #expect(error.code == "sqlite.constraint" && !error.message.contains("secret-value"))
        }
        #expect(try db.scalar("SELECT COUNT(*) FROM t").int == 1)
    }
}
