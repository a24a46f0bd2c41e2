import Accounts
import Audit
import CriticalResults
import DICOM
import Foundation
import GridContract
import Logging
import QualityControl
import RadGridCore
import Routing
import StudyStore

/// A report as the API returns it (the contract's field names).
enum ReportView {
    static func object(_ report: StudyReport) throws -> [String: Any] { try report.publicObject() }
}

/// Writing reports: drafts, signing (which completes the case), addenda.
struct ReportDesk: Sendable {
    let store: StudyStore
    let router: ExpertRouter
    let images: StudyImages
    let secondReads: SecondReads
    let logger: Logger
    /// Critical results: a signed report marked critical notifies the sending site.
    var criticalResults: CriticalResultStore? = nil

    /// Handles `POST /api/v1/cases/{id}/report` for the expert holding the accepted case.
    func write(caseInfo info: CaseInfo, study record: StudyRecord, principal: Principal, body: [String: Any]) async throws -> StudyReport {
        guard principal.role == .expert, let expert = principal.expert else { throw PortalError.forbidden("only the reading expert writes the report") }
        let now = WallClock.nowMilliseconds()
        let actor = AuditActor(.expert, expert)
        let existing = try await store.report(record.uid)

        if let text = body["addendum"] {
            // After signing: the case is closed, so the signer (or an expert holding it again) adds text.
            guard let existing, existing.status != .draft else { throw PortalError.state("an addendum needs a signed report") }
            guard existing.author == expert else { throw PortalError.forbidden("only the signing expert adds an addendum") }
            var next = existing
            let addendumText = text as? String ?? "", reason = body["reason"] as? String ?? ""
            do throws(StudyStoreError) {
                next.addenda.append(try existing.addendum(text: addendumText, reason: reason, author: expert, authorName: principal.name, at: now))
            } catch {
                throw PortalError.badRequest(error.message)
            }
            next.status = .amended
            next.updatedMs = now
            _ = try await store.writeReport(next, operation: .addendum, actor: actor)
            return next
        }

        guard info.state == "accepted", info.expert == expert else {
            throw PortalError.state(info.state == "offered" ? "accept the case before reporting" : "the case is not held by you")
        }
        func text(_ key: String) throws(PortalError) -> String {
            guard let value = body[key] else { return "" }
            guard let string = value as? String else { throw PortalError.badRequest("\(key) must be text") }
            return string
        }
        func flag(_ key: String) throws(PortalError) -> Bool {
            guard let value = body[key] else { return false }
            guard let bool = value as? Bool else { throw PortalError.badRequest("\(key) must be true or false") }
            return bool
        }
        let findings = try text("findings"), impression = try text("impression")
        let critical = try flag("critical"), final = try flag("final")
        var report = StudyReport(study: record.uid.rawValue, caseID: info.id, status: final ? .final : .draft, findings: findings,
                                 impression: impression, critical: critical, author: expert, authorName: principal.name, updatedMs: now,
                                 signedMs: final ? now : nil)
        if final {
            if let existing, existing.status != .draft, existing.hash == report.hash {
                report = existing  // a retried signature: complete the case below
            } else {
                report.subject = try await subject(record)
                report.srSeriesUID = UIDs.make()
                report.srInstanceUID = UIDs.make()
            }
        }
        do throws(StudyStoreError) {
            try report.validate()
        } catch {
            throw PortalError.badRequest(error.message)
        }
        _ = try await store.writeReport(report, operation: final ? .final : .draft, actor: actor)
        if final {
            // QC decides (once) whether this read is read again, and holds the images if so,
            // before the case completes and the coordinator's retention step would drop them.
            do {
                try await secondReads.signed(caseInfo: info, study: record, reportCritical: report.critical)
            } catch {
                logger.error("signed report but QC could not record it", metadata: ["case": "\(info.id)", "error": "\(error)"])
                throw PortalError(503, "portal.qcFailed", "the report is signed but quality control could not record it; retry")
            }
            do {
                try await router.complete(caseID: info.id, expert: expert, reportReference: "report:" + String(report.hash.prefix(40)))
            } catch let error as RoutingError {
                // A retry after the case was completed by the first attempt is fine.
                let current = try await router.caseInfo(info.id)
                guard current?.state == "completed", current?.report == "report:" + String(report.hash.prefix(40)) else {
                    logger.error("signed report but the case did not complete", metadata: ["case": "\(info.id)", "code": "\(error.code)"])
                    throw PortalError(503, "portal.completeFailed", "the report is signed but the case could not be completed; retry")
                }
            }
            // Critical results: notify the sending site (idempotent per study, so a retried signature raises nothing new).
            if report.critical {
                try await criticalResults?.raise(study: record.uid, caseID: record.caseID, site: record.site, source: .report,
                                                 priority: record.route?.priority ?? record.priority, now: now, actor: actor)
            }
        }
        return report
    }

    /// Who the report is about, from the first instance's header (kept with the signed report).
    func subject(_ record: StudyRecord) async throws -> StudyReport.Subject {
        var subject = StudyReport.Subject()
        guard let sop = try await store.instanceUIDs(record.uid).first, let header = try? await images.header(record.uid, sop) else { return subject }
        subject.patientName = header.string(.patientName) ?? ""
        subject.patientID = header.string("PatientID") ?? ""
        subject.patientBirthDate = header.string("PatientBirthDate") ?? ""
        subject.patientSex = header.string("PatientSex") ?? ""
        subject.accessionNumber = header.string("AccessionNumber") ?? ""
        subject.studyDate = header.string("StudyDate") ?? ""
        subject.studyTime = header.string("StudyTime") ?? ""
        subject.studyID = header.string("StudyID") ?? ""
        subject.referringPhysicianName = header.string("ReferringPhysicianName") ?? ""
        subject.studyDescription = header.string("StudyDescription") ?? ""
        subject.timezoneOffset = header.string("TimezoneOffsetFromUTC") ?? ""
        return subject
    }
}

/// UIDs the grid makes itself: the `2.25.` root followed by a random 128-bit number in decimal
/// (PS3.5 B.2), so no organisation root is needed.
public enum UIDs {
    public static func make() -> String {
        var random = SystemRandomNumberGenerator()
        let high = UInt64.random(in: 0...UInt64.max, using: &random), low = UInt64.random(in: 0...UInt64.max, using: &random)
        return "2.25." + decimal(high: high, low: low)
    }

    /// A 128-bit number in decimal (no big-integer library: repeated division by 10).
    static func decimal(high: UInt64, low: UInt64) -> String {
        var words = [high >> 32, high & 0xFFFF_FFFF, low >> 32, low & 0xFFFF_FFFF]
        var digits: [Character] = []
        while words.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for i in words.indices {
                let value = (remainder << 32) | words[i]
                words[i] = value / 10
                remainder = value % 10
            }
            digits.append(Character(String(remainder)))
        }
        return digits.isEmpty ? "0" : String(digits.reversed())
    }
}
