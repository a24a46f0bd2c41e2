import Accounts
import Audit
import RedisClient
import GridContract
import QualityControl
import RadGridCore
import Routing
import StudyStore

/// Who may read which study, decided on every request from the signed-in principal:
/// an expert the studies of the cases they have accepted (an offered case shows its summary
/// only: the images come with accepting it); a site user its own site's studies; `qc` and
/// `admin` every study. Reads are recorded as `study.viewed` in the study's audit chain.
struct Access: Sendable {
    let store: StudyStore
    let router: ExpertRouter
    let qc: QCStore

    enum Purpose { case images, summary }

    /// The study's record if `principal` may read it; 404 when it does not exist, 403 for
    /// another site's study (as the gateway answers) and for an expert without an accepted
    /// case on it.
    func study(_ uid: StudyUID, for principal: Principal, purpose: Purpose = .images) async throws -> StudyRecord {
        guard let record = try await store.record(uid) else { throw PortalError.notFound("no such study") }
        switch principal.role {
        case .admin, .qc:
            return record
        case .site:
            // As for a study that does not exist: no answer tells a site what others hold.
            guard record.site.rawValue == principal.site else { throw PortalError.notFound("no such study") }
            return record
        case .expert:
            // The first read's case, or its second read (QC) held by this expert.
            guard let caseID = record.caseID else { throw PortalError.forbidden("the study is not on your worklist") }
            let infos = try await router.caseInfos([caseID.rawValue, caseID.rawValue + QCReview.reviewSuffix])
            guard let info = infos.compactMap({ $0 }).first(where: { $0.expert == principal.expert && ($0.state == "offered" || $0.state == "accepted") }) else {
                throw PortalError.forbidden("the study is not on your worklist")
            }
            if info.state == "accepted" || (purpose == .summary && info.state == "offered") { return record }
            throw PortalError.forbidden("accept the case before opening its images")
        }
    }

    /// The study of each case, in order (nil where unknown): a first read through the
    /// coordinator's case index, a second read through its QC record.
    func studyUIDs(for infos: [CaseInfo]) async throws -> [StudyUID?] {
        guard !infos.isEmpty else { return [] }
        let commands = infos.map { info -> RedisCommand in
            if info.kind == .review, let read = QCReview.readCase(ofReview: info.id) {
                return RedisCommand("HGET", RedisArgument(qc.recordKey(read)), "study")
            }
            return RedisCommand("GET", RedisArgument(store.keys.caseStudy(CaseID(unchecked: info.id))))
        }
        return try await store.client.pipeline(commands).map { $0.string.flatMap { try? StudyUID($0) } }
    }

    /// The case if `principal` holds it or is offered it (experts), or may see it (admin, qc, its site).
    func caseInfo(_ id: String, for principal: Principal) async throws -> CaseInfo {
        guard (try? CaseID(id)) != nil, let info = try await router.caseInfo(id) else { throw PortalError.notFound("no such case") }
        switch principal.role {
        case .admin, .qc: return info
        case .site:
            guard info.site == principal.site else { throw PortalError.forbidden("the case belongs to another site") }
            return info
        case .expert:
            guard info.expert == principal.expert, info.state == "offered" || info.state == "accepted" else {
                throw PortalError.forbidden("the case is not offered to or held by you")
            }
            return info
        }
    }

    /// Studies `principal` may search (QIDO), newest first, at most `limit`.
    func searchableStudies(for principal: Principal, limit: Int = 2000) async throws -> [StudyUID] {
        switch principal.role {
        case .expert:
            guard let expert = principal.expert else { return [] }
            let accepted = try await router.caseInfos(try await router.heldCases(expert: expert)).compactMap { $0 }.filter { $0.state == "accepted" }
            return try await studyUIDs(for: accepted).compactMap { $0 }
        case .site, .admin, .qc:
            let all = (try await store.client.send("ZREVRANGE", RedisArgument(store.keys.allStudies), "0", RedisArgument(limit - 1)).array ?? [])
                .compactMap { $0.string.flatMap { try? StudyUID($0) } }
            guard principal.role == .site else { return all }
            let sites = try await store.client.pipeline(all.map { RedisCommand("HGET", RedisArgument(store.keys.study($0).record), "site") })
            return zip(all, sites).compactMap { $1.string == principal.site ? $0 : nil }
        }
    }

    /// Records a read of a study's data (who, what, when) in the study's audit chain.
    func recordView(_ uid: StudyUID, by principal: Principal, what: String) async throws {
        let actor = AuditActor(principal.auditActor) ?? AuditActor(.system, principal.user)
        try await store.audit(uid).append(actor: actor, action: "study.viewed", study: uid.rawValue, details: what)
    }
}
