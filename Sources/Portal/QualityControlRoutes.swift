import Accounts
import Foundation
import GridContract
import Hummingbird
import QualityControl
import RadGridCore
import Routing
import StudyStore

/// Peer review in the portal:
/// - `POST /api/v1/cases/{id}/review` — the second reader's RADPEER score (`{"score": "2a",
///   "comment": "..."}`); the answer carries the first report, shown from now on.
/// - `GET /api/v1/qc/queue` — open reviews and the arbitration queue (qc, admin).
/// - `GET /api/v1/qc/reviews/{case}` — one review with the first report (qc, admin).
/// - `POST /api/v1/qc/reviews/{case}/arbitrate` — the final score of a significant discrepancy (qc).
/// - `GET /api/v1/qc/stats` — per-expert figures (qc, admin).
extension PortalHandlers {
    func addQualityControl(to router: Router<Context>) {
        router.post("/api/v1/cases/:id/review") { request, context in
            await respond {
                let session = try await authenticate(request)
                guard session.principal.role == .expert, let expert = session.principal.expert else { throw PortalError.forbidden("only experts review") }
                let id = context.parameters.get("id") ?? ""
                guard (try? CaseID(id)) != nil, QCReview.readCase(ofReview: id) != nil else { throw PortalError.notFound("no such second read") }
                let body = try await request.jsonObject(limit: 32 << 10)
                let (score, comment) = try Self.scoreAndComment(body)
                let review = try await qcCall { try await secondReads.score(reviewCaseID: id, reviewer: expert, score: score, comment: comment) }
                var object = try Self.object(review)
                if let uid = try? StudyUID(review.study), let report = try await store.report(uid) {
                    object["first_report"] = try ReportView.object(report)
                    try await access.recordView(uid, by: session.principal, what: "via=api;what=report;case=\(id);after=review")
                }
                return try Reply.json(["review": object])
            }
        }
        router.get("/api/v1/qc/queue") { request, _ in
            await respond {
                try Self.requireQC(try await authenticate(request).principal, allowAdmin: true)
                let open = try await secondReads.qc.openReviews()
                return try Reply.json([
                    "reading": try open.filter { $0.state == .reading }.map(Self.object),
                    "arbitration": try open.filter { $0.state == .arbitration }.map(Self.object),
                ])
            }
        }
        router.get("/api/v1/qc/stats") { request, _ in
            await respond {
                try Self.requireQC(try await authenticate(request).principal, allowAdmin: true)
                let figures = try await secondReads.qc.figures(policy: secondReads.policy)
                return try Reply.json(["experts": try JSONSerialization.jsonObject(with: JSONEncoder().encode(figures))])
            }
        }
        router.get("/api/v1/qc/reviews/:case") { request, context in
            await respond {
                let session = try await authenticate(request)
                try Self.requireQC(session.principal, allowAdmin: true)
                let id = context.parameters.get("case") ?? ""
                guard (try? CaseID(id)) != nil, let review = try await secondReads.qc.review(id) else { throw PortalError.notFound("no such review") }
                var object = try Self.object(review)
                if let uid = try? StudyUID(review.study), let report = try await store.report(uid) {
                    object["first_report"] = try ReportView.object(report)
                    try await access.recordView(uid, by: session.principal, what: "via=api;what=report;case=\(id);for=qc")
                }
                return try Reply.json(["review": object])
            }
        }
        router.post("/api/v1/qc/reviews/:case/arbitrate") { request, context in
            await respond {
                let session = try await authenticate(request)
                try Self.requireQC(session.principal, allowAdmin: false)
                let id = context.parameters.get("case") ?? ""
                guard (try? CaseID(id)) != nil else { throw PortalError.notFound("no such review") }
                let body = try await request.jsonObject(limit: 32 << 10)
                let (score, comment) = try Self.scoreAndComment(body)
                let arbiter = session.principal.expert ?? session.principal.user
                let review = try await qcCall { try await secondReads.arbitrate(caseID: id, arbiter: arbiter, score: score, comment: comment) }
                return try Reply.json(["review": try Self.object(review)])
            }
        }
    }

    static func requireQC(_ principal: Principal, allowAdmin: Bool) throws {
        guard principal.role == .qc || (allowAdmin && principal.role == .admin) else { throw PortalError.forbidden("for the QC role") }
    }

    static func scoreAndComment(_ body: [String: Any]) throws -> (RadpeerScore, String) {
        guard let text = body["score"] as? String, let score = RadpeerScore(rawValue: text) else {
            throw PortalError.badRequest("score must be one of \(RadpeerScore.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let comment = body["comment"] as? String ?? (body["comment"] == nil ? "" : nil) else { throw PortalError.badRequest("comment must be text") }
        return (score, comment)
    }

    static func object(_ review: QCReview) throws -> [String: Any] {
        (try JSONSerialization.jsonObject(with: JSONEncoder().encode(review)) as? [String: Any]) ?? [:]
    }

    /// QC's typed errors as HTTP answers.
    func qcCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as QCError {
            switch error.code {
            case "qc.notHolder", "qc.selfReview", "qc.conflict": throw PortalError(403, error.code, error.message)
            case "qc.unknown", "qc.notReview": throw PortalError(404, error.code, error.message)
            case "qc.invalid": throw PortalError(400, error.code, error.message)
            default: throw PortalError(409, error.code, error.message)
            }
        }
    }
}
