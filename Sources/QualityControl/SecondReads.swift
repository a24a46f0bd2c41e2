import Audit
import Foundation
import GridContract
import Logging
import Metrics
import RadGridCore
import RedisClient
import Routing
import StudyStore

/// Peer review of signed reports: decides which reads are read again, routes the second read
/// (same rules, another hospital than the first reader's, blinded), takes the RADPEER score,
/// sends significant discrepancies to arbitration, keeps per-expert figures and flags (and
/// optionally suspends) experts over the policy's rate. The images of a sampled study are kept
/// until its review closes.
public struct SecondReads: Sendable {
    public let store: StudyStore
    public let router: ExpertRouter
    public let qc: QCStore
    public let policy: QCPolicy
    let logger: Logger
    let clock: @Sendable () -> Int64

    let sampled = Counter(label: "radgrid_qc_sampled_total")
    let closed = Counter(label: "radgrid_qc_reviews_closed_total")
    let flaggedCounter = Counter(label: "radgrid_qc_experts_flagged_total")

    public init(store: StudyStore, router: ExpertRouter, qc: QCStore, policy: QCPolicy, logger: Logger,
                clock: @escaping @Sendable () -> Int64 = { WallClock.nowMilliseconds() }) {
        self.store = store
        self.router = router
        self.qc = qc
        self.policy = policy
        self.logger = logger
        self.clock = clock
    }

    /// What QC decided about a signed read.
    public struct Decision: Sendable, Hashable {
        public var sampled: Bool
        public var reasons: [String]
    }

    /// Records a signed read and, when it is drawn, keeps its images and routes the second
    /// read. Call it after the report is stored and before the read case completes (so the
    /// coordinator, seeing the case complete, finds the images held). Idempotent: a retried
    /// signature gets the first decision and routes nothing twice.
    @discardableResult
    public func signed(caseInfo info: CaseInfo, study record: StudyRecord, reportCritical: Bool) async throws -> Decision {
        guard let expert = info.expert else { throw QCError("qc.invalid", "case \(info.id) has no reader") }
        let home = try await router.expertState(expert)?.expert.homeSite
        let read = SignedRead(caseID: info.id, study: record.uid.rawValue, expert: expert, expertHome: home, modality: record.modality,
                              specialty: info.specialty, site: info.site, region: info.region, weight: info.weight)
        let aiCritical = record.screening?.urgency == .critical
        let result = try await qc.recordSignedRead(
            read, randomlySampled: QCSampler.randomlySampled(caseID: info.id, modality: record.modality, policy: policy),
            otherReasons: QCSampler.disagreement(aiCritical: aiCritical, reportCritical: reportCritical, policy: policy),
            policy: policy, now: clock(), actor: "expert:" + expert)
        if result.sampled {
            if result.new { sampled.increment() }
            try await store.holdBlobs(record.uid, actor: AuditActor(.system, "qc"), reason: "second-read")
            if let review = try await qc.review(info.id) { try await route(review) }
        }
        return Decision(sampled: result.sampled, reasons: result.reasons)
    }

    /// Routes the second read of `review` (idempotent by its case id).
    func route(_ review: QCReview) async throws {
        var request = CaseRequest(id: review.reviewCaseID, specialty: try Specialty(review.specialty), site: review.site, region: review.region,
                                  priority: Priority(name: policy.reviewPriority) ?? .routine, weight: max(1, review.weight),
                                  deadline: clock() + Int64(policy.reviewDeadlineHours) * 3_600_000)
        request.kind = .review
        request.excludedExperts = [review.firstReader]
        request.avoidHomeSite = review.firstReaderHome
        let outcome = try await router.submitCase(request, actor: "qc")
        logger.info("second read routed", metadata: ["case": "\(review.caseID)", "outcome": "\(outcome)", "reasons": "\(review.reasons.joined(separator: ","))"])
    }

    /// The site disputes the report of `record`'s case: it is read again (the images are
    /// kept from now on; those already deleted after the report are gone).
    public func dispute(study record: StudyRecord, actor: AuditActor) async throws -> String {
        guard policy.siteDisputes else { throw QCError("qc.disputesOff", "the QC policy does not take disputes") }
        guard let caseID = record.caseID?.rawValue, let review = try await qc.review(caseID) else {
            throw QCError("qc.notReported", "the study has no signed report QC knows of")
        }
        let reply = try await qc.run(QCStore.dispute, caseID: caseID, study: review.study, now: clock(), actor: actor.description, [RedisArgument(caseID)])
        if reply.first == "opened" {
            sampled.increment()
            try await store.holdBlobs(record.uid, actor: AuditActor(.system, "qc"), reason: "dispute")
            if let review = try await qc.review(caseID) { try await route(review) }
        }
        return reply.first ?? "unknown"
    }

    /// The second reader's score. The reviewer must hold the accepted review case. Returns the
    /// review as it now stands; the first report may be shown from now on.
    public func score(reviewCaseID: String, reviewer: String, score: RadpeerScore, comment: String) async throws -> QCReview {
        guard let caseID = QCReview.readCase(ofReview: reviewCaseID) else { throw QCError("qc.notReview", "\(reviewCaseID) is not a second read") }
        guard comment.count <= 4000 else { throw QCError.invalid("comment: at most 4000 characters") }
        guard let info = try await router.caseInfo(reviewCaseID), info.kind == .review else { throw QCError("qc.unknown", "no second read \(reviewCaseID)") }
        guard let review = try await qc.review(caseID) else { throw QCError("qc.unknown", "no QC record for \(caseID)") }
        let alreadyScored = info.state == "completed" && review.reviewer == reviewer
        guard alreadyScored || (info.state == "accepted" && info.expert == reviewer) else {
            throw QCError("qc.notHolder", "accept the second read before scoring it")
        }
        let reply = try await qc.run(QCStore.score, caseID: caseID, study: review.study, now: clock(), actor: "expert:" + reviewer, [
            RedisArgument(caseID), RedisArgument(reviewer), RedisArgument(score.rawValue), RedisArgument(comment),
            RedisArgument(policy.arbitrationScores.map(\.rawValue).joined(separator: " ")),
            RedisArgument(Int64(policy.retentionDays) * 86_400_000),
        ] + flagArguments)
        if reply.first == "err" { throw Self.error(reply) }
        if info.state == "accepted" {
            try await router.complete(caseID: reviewCaseID, expert: reviewer, reportReference: "qc:" + score.rawValue)
        }
        if reply.first == "closed" { try await finished(caseID: caseID, newlyFlagged: reply.count > 1 && reply[1] == "1") }
        return try await qc.review(caseID) ?? review
    }

    /// A qc-role reader's final score on a review awaiting arbitration.
    public func arbitrate(caseID: String, arbiter: String, score: RadpeerScore, comment: String) async throws -> QCReview {
        guard comment.count <= 4000 else { throw QCError.invalid("comment: at most 4000 characters") }
        guard let review = try await qc.review(caseID) else { throw QCError("qc.unknown", "no QC record for \(caseID)") }
        let reply = try await qc.run(QCStore.arbitrate, caseID: caseID, study: review.study, now: clock(), actor: "qc:" + arbiter, [
            RedisArgument(caseID), RedisArgument(arbiter), RedisArgument(score.rawValue), RedisArgument(comment),
            RedisArgument(Int64(policy.retentionDays) * 86_400_000),
        ] + flagArguments)
        if reply.first == "err" { throw Self.error(reply) }
        try await finished(caseID: caseID, newlyFlagged: reply.count > 1 && reply[1] == "1")
        return try await qc.review(caseID) ?? review
    }

    var flagArguments: [RedisArgument] {
        [RedisArgument(policy.flag.minReviews), RedisArgument(policy.flag.discrepancyRate),
         RedisArgument(policy.flag.scores.map(\.rawValue).joined(separator: " "))]
    }

    static func error(_ reply: [String]) -> QCError {
        let state = reply.count > 2 ? reply[2] : ""
        switch reply.count > 1 ? reply[1] : "" {
        case "unknown": return QCError("qc.unknown", "QC has no record of this case")
        case "self": return QCError("qc.selfReview", "the first reader cannot review their own report")
        case "conflict": return QCError("qc.conflict", "an arbiter cannot be the first or second reader")
        default: return QCError("qc.state", "the review is \(state.isEmpty ? "not open" : state)")
        }
    }

    /// A review closed: its images may go; a newly flagged expert is suspended for the
    /// case's subspecialty when the policy says so.
    func finished(caseID: String, newlyFlagged: Bool) async throws {
        closed.increment()
        guard let review = try await qc.review(caseID) else { return }
        if let uid = try? StudyUID(review.study) { try await store.releaseBlobHold(uid, actor: AuditActor(.system, "qc")) }
        guard newlyFlagged else { return }
        flaggedCounter.increment()
        logger.warning("expert flagged by QC", metadata: ["expert": "\(review.firstReader)", "case": "\(caseID)"])
        if policy.flag.suspend, var expert = try await router.expertState(review.firstReader)?.expert {
            let specialty = try Specialty(review.specialty)
            if !expert.isSuspended(for: specialty) {
                expert.suspendedSpecialties.append(specialty)
                try await router.upsertExperts([expert])
                _ = try await qc.audit.append(actor: AuditActor(.system, "qc"), action: "qc.suspended", study: review.study,
                                              details: "expert=\(expert.id);specialty=\(specialty);case=\(caseID)")
            }
        }
    }
}
