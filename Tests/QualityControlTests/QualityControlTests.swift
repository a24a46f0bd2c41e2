import Audit
import Foundation
import GridContract
import Logging
import QualityControl
import RadGridCore
import RedisClient
import Routing
import StudyStore
import Synchronization
import Testing
import TestSupport

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let value: Mutex<Int64>
    init(_ start: Int64) { value = Mutex(start) }
    var now: Int64 { value.withLock { $0 } }
    func advance(ms: Int64) { value.withLock { $0 += ms } }
}

@Suite struct QCPolicyTests {
    @Test func shippedFileEqualsTheBuiltInPolicy() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Ops/qc.json")
        #expect(try QCPolicy.load(path: url.path) == .standard)
    }

    @Test func invalidPoliciesNameTheField() throws {
        func code(_ json: String) -> String? {
            do { _ = try QCPolicy.decode(Data(json.utf8)); return nil } catch let error as QCError { return error.message } catch { return "\(error)" }
        }
        #expect(code(#"{"samplingRate": {"default": 1.5}}"#)?.contains("samplingRate.default") == true)
        #expect(code(#"{"samplingRate": {"CT": 0.1}}"#)?.contains("samplingRate.default") == true)
        #expect(code(#"{"arbitrationScores": ["4"]}"#)?.contains("arbitrationScores") == true)
        #expect(code(#"{"flag": {"minReviews": 0, "discrepancyRate": 0.1, "scores": ["3b"], "suspend": true}}"#)?.contains("flag.minReviews") == true)
        #expect(code(#"{"reviewPriority": "soon"}"#)?.contains("reviewPriority") == true)
        #expect(code(#"{"firstCases": "ten"}"#)?.contains("firstCases") == true)
        #expect(code(#"{"samplingRate": {"default": 0.2, "MR": 0.5}}"#) == nil)
    }

    @Test func randomDrawsAreFixedPerCaseAndHitTheRate() {
        #expect(QCSampler.draw(caseID: "C-1") == QCSampler.draw(caseID: "C-1"))
        var policy = QCPolicy.standard
        policy.samplingRate = ["default": 0.05, "MR": 0.2]
        let ct = (0..<20_000).filter { QCSampler.randomlySampled(caseID: "case-\($0)", modality: "CT", policy: policy) }.count
        let mr = (0..<20_000).filter { QCSampler.randomlySampled(caseID: "case-\($0)", modality: "MR", policy: policy) }.count
        #expect((800...1200).contains(ct), "CT sampled \(ct) of 20000 at 5 %")
        #expect((3600...4400).contains(mr), "MR sampled \(mr) of 20000 at 20 %")
    }

    @Test func disagreementWithThePreScreenOnACriticalFinding() {
        let policy = QCPolicy.standard
        #expect(QCSampler.disagreement(aiCritical: true, reportCritical: false, policy: policy) == [.aiCriticalNotReported])
        #expect(QCSampler.disagreement(aiCritical: false, reportCritical: true, policy: policy) == [.reportedCriticalAIMissed])
        #expect(QCSampler.disagreement(aiCritical: true, reportCritical: true, policy: policy).isEmpty)
        var off = policy
        off.aiDisagreement = false
        #expect(QCSampler.disagreement(aiCritical: true, reportCritical: false, policy: off).isEmpty)
    }
}

/// Second reads through the real scripts, the real router and the real study store.
@Suite(.serialized) struct SecondReadTests {
    struct Grid {
        let client: RedisClient
        let prefix: KeyPrefix
        let store: StudyStore
        let router: ExpertRouter
        let qc: QCStore
        let clock: TestClock

        func reads(_ policy: QCPolicy) -> SecondReads {
            SecondReads(store: store, router: router, qc: qc, policy: policy, logger: Logger(label: "test"), clock: { [clock] in clock.now })
        }
    }

    static func grid() async throws -> Grid {
        let client = try RedisClient(url: try await TestRedis.url())
        let prefix = KeyPrefix(TestRedis.uniquePrefix("qc"))
        let clock = TestClock(WallClock.nowMilliseconds())
        let router = ExpertRouter(redis: client, prefix: prefix, actor: "test", clock: { clock.now })
        func expert(_ id: String, home: String?, capacity: Int = 20) -> Expert {
            Expert(id: id, name: "Dr. \(id)", specialties: [try! Specialty("CT/head/neuro")], credentials: [Credential(scope: "H001")],
                   capacity: capacity, homeSite: home, licence: Licence(number: "L-\(id)"), practiceSince: 0)
        }
        try await router.upsertExperts([expert("FIRST", home: "H007"), expert("COLLEAGUE", home: "H007", capacity: 40), expert("OTHER", home: "H009")],
                                       presence: .online, heartbeatUntil: clock.now + 86_400_000)
        return Grid(client: client, prefix: prefix, store: StudyStore(client: client, prefix: prefix), router: router,
                    qc: QCStore(client: client, prefix: prefix), clock: clock)
    }

    /// A stored study with two instances, and its read case accepted by FIRST.
    static func readCase(_ g: Grid, study: String, caseID: String) async throws -> (CaseInfo, StudyRecord) {
        for n in 1...2 {
            let header = InstanceHeader(study: try StudyUID(study), series: try SeriesUID(study + ".1"), sop: try SOPInstanceUID("\(study).1.\(n)"),
                                        modality: "CT", bodyPart: "HEAD")
            try await g.store.storeInstance(site: try SiteID("H001"), header: header, priority: .routine, compressed: [UInt8(n)], rawSize: 1, sha256: "x")
        }
        // The coordinator's hand-off names the case on the record (RecordField "case").
        try await g.client.send("HSET", RedisArgument(g.store.keys.study(try StudyUID(study)).record), "case", RedisArgument(caseID))
        var request = CaseRequest(id: caseID, specialty: try Specialty("CT/head/neuro"), site: "H001", priority: .routine, weight: 3)
        request.excludedExperts = ["COLLEAGUE", "OTHER"]
        #expect(try await g.router.submitCase(request).expert == "FIRST")
        try await g.router.accept(caseID: caseID, expert: "FIRST")
        return (try #require(try await g.router.caseInfo(caseID)), try #require(try await g.store.record(try StudyUID(study))))
    }

    @Test func aSampledReadKeepsItsImagesAndGoesToAnotherHospitalBlind() async throws {
        let g = try await Self.grid()
        defer { g.client.shutdown() }
        var policy = QCPolicy.standard
        policy.samplingRate = ["default": 0]
        policy.firstCases = 1
        let reads = g.reads(policy)
        let (info, record) = try await Self.readCase(g, study: "1.9.1", caseID: "C1")

        let decision = try await reads.signed(caseInfo: info, study: record, reportCritical: false)
        #expect(decision.sampled && decision.reasons == ["first_cases"])
        // A retried signature decides nothing again and routes nothing twice.
        #expect(try await reads.signed(caseInfo: info, study: record, reportCritical: false) == decision)
        let review = try #require(try await g.router.caseInfo("C1.qc"))
        #expect(review.kind == .review && review.expert == "OTHER", "another hospital's reader, not the first reader's colleague")
        #expect(review.priority == "routine" && review.deadline == g.clock.now + 72 * 3_600_000)
        #expect(try await g.qc.review("C1")?.state == .reading)

        // The read case completes; the coordinator's retention step keeps the images for QC.
        try await g.router.complete(caseID: "C1", expert: "FIRST", reportReference: "report:x")
        #expect(try await g.store.deleteBlobs(study: record.uid, actor: AuditActor(.coordinator, "c1")) == 0)
        let held = try #require(try await g.store.record(record.uid))
        #expect(held.blobsDeferred && !held.blobsDeleted)
        #expect(try await g.store.compressedInstance(study: record.uid, sop: try SOPInstanceUID("1.9.1.1.1")) != nil)

        // Only the holder of the accepted second read scores it; the first reader never.
        await #expect(throws: QCError.self) { try await reads.score(reviewCaseID: "C1.qc", reviewer: "OTHER", score: .concur, comment: "") }
        await #expect(throws: QCError.self) { try await reads.score(reviewCaseID: "C1.qc", reviewer: "FIRST", score: .concur, comment: "") }
        try await g.router.accept(caseID: "C1.qc", expert: "OTHER")
        let closed = try await reads.score(reviewCaseID: "C1.qc", reviewer: "OTHER", score: .concur, comment: "agree")
        #expect(closed.state == .closed && closed.finalScore == .concur && closed.reviewer == "OTHER")
        #expect(try await g.router.caseInfo("C1.qc")?.state == "completed")
        // The review closed: the deferred images go now.
        let after = try #require(try await g.store.record(record.uid))
        #expect(after.blobsDeleted && !after.blobsDeferred)
        #expect(try await g.store.compressedInstance(study: record.uid, sop: try SOPInstanceUID("1.9.1.1.1")) == nil)
        let figures = try await g.qc.figures(policy: policy).first { $0.expert == "FIRST" }
        #expect(figures?.reads == 1 && figures?.reviews == 1 && figures?.byScore["1"] == 1 && figures?.discrepancyRate == 0)
        // A second signed read of FIRST is past the first-cases rule and not drawn.
        let (info2, record2) = try await Self.readCase(g, study: "1.9.2", caseID: "C2")
        #expect(try await reads.signed(caseInfo: info2, study: record2, reportCritical: false).sampled == false)
        #expect(try await g.router.caseInfo("C2.qc") == nil)
        let actions = try await g.qc.audit.entries().map(\.action)
        #expect(actions == ["qc.sampled", "qc.scored", "qc.closed"])
        #expect(try await AuditTrail.verify(client: g.client, prefix: g.prefix).isIntact)
    }

    @Test func significantDiscrepanciesGoToArbitrationAndFlagTheFirstReader() async throws {
        let g = try await Self.grid()
        defer { g.client.shutdown() }
        var policy = QCPolicy.standard
        policy.firstCases = 5
        policy.flag = .init(minReviews: 1, discrepancyRate: 0.5, scores: [.majorLikelySignificant], suspend: true)
        let reads = g.reads(policy)
        let (info, record) = try await Self.readCase(g, study: "2.9.1", caseID: "D1")
        #expect(try await reads.signed(caseInfo: info, study: record, reportCritical: true).reasons.contains("first_cases"))
        try await g.router.complete(caseID: "D1", expert: "FIRST", reportReference: "report:x")
        try await g.router.accept(caseID: "D1.qc", expert: "OTHER")
        let scored = try await reads.score(reviewCaseID: "D1.qc", reviewer: "OTHER", score: .majorLikelySignificant, comment: "missed bleed")
        #expect(scored.state == .arbitration)
        #expect(try await g.qc.arbitrationQueue().map(\.caseID) == ["D1"])
        // Not counted until settled; the second reader cannot arbitrate their own score.
        #expect(try await g.qc.figures(policy: policy).first { $0.expert == "FIRST" }?.reviews == 0)
        await #expect(throws: QCError.self) { try await reads.arbitrate(caseID: "D1", arbiter: "OTHER", score: .concur, comment: "") }
        let settled = try await reads.arbitrate(caseID: "D1", arbiter: "QC1", score: .majorLikelySignificant, comment: "confirmed")
        #expect(settled.state == .closed && settled.finalScore == .majorLikelySignificant && settled.arbiter == "QC1")
        #expect(try await g.qc.arbitrationQueue().isEmpty)
        #expect(try await g.qc.openReviews().isEmpty)
        let figures = try #require(try await g.qc.figures(policy: policy).first { $0.expert == "FIRST" })
        #expect(figures.flagged && figures.discrepancyRate == 1 && figures.byScore["3b"] == 1)
        // Suspended for the subspecialty only, by a roster change the router audits.
        let first = try #require(try await g.router.expertState("FIRST")?.expert)
        #expect(first.suspendedSpecialties == [try Specialty("CT/head/neuro")] && !first.suspended)
        #expect(try await g.qc.audit.entries().map(\.action).suffix(3) == ["qc.flagged", "qc.closed", "qc.suspended"])
        let upsert = try await g.router.allAuditEntries().last { $0.action == "expert_upsert" }
        #expect(upsert?.details["changed"] == "suspended_for")
        // A new neuro case no longer goes to FIRST, a general head CT still may.
        var neuro = CaseRequest(id: "N1", specialty: try Specialty("CT/head/neuro"), site: "H001", priority: .routine, weight: 3)
        neuro.excludedExperts = ["OTHER", "COLLEAGUE"]
        #expect(try await g.router.submitCase(neuro) == .waiting)
        #expect(try await reads.qc.unflag("FIRST", actor: AuditActor(.admin, "test")))
    }

    @Test func aSiteDisputeOpensAReviewOnce() async throws {
        let g = try await Self.grid()
        defer { g.client.shutdown() }
        var policy = QCPolicy.standard
        policy.samplingRate = ["default": 0]
        policy.firstCases = 0
        let reads = g.reads(policy)
        let (info, record) = try await Self.readCase(g, study: "3.9.1", caseID: "S1")
        #expect(try await reads.signed(caseInfo: info, study: record, reportCritical: false).sampled == false)
        #expect(try await g.client.send("PTTL", RedisArgument(g.qc.recordKey("S1"))).int ?? -1 > 0, "an unsampled read's record expires")
        let site = AuditActor(.site, "H001")
        #expect(try await reads.dispute(study: record, actor: site) == "opened")
        #expect(try await g.client.send("PTTL", RedisArgument(g.qc.recordKey("S1"))).int == -1, "an open review is kept until closed")
        #expect(try await g.router.caseInfo("S1.qc")?.expert == "OTHER")
        #expect(try await reads.dispute(study: record, actor: site) == "added")
        #expect(try await g.qc.review("S1")?.reasons == ["dispute"])
        var off = policy
        off.siteDisputes = false
        await #expect(throws: QCError.self) { try await g.reads(off).dispute(study: record, actor: site) }
    }
}
