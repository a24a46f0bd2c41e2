import Audit
import Crypto
import Foundation
import GridContract
import RadGridCore
import RedisClient

/// An expert's report on a study, as stored with it (`{s:<uid>}:report`) and as the portal and
/// the gateway return it (JSON, snake_case). The text is patient data: it never reaches logs
/// or audit entries, which carry its SHA-256 instead.
public struct StudyReport: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Codable {
        case draft, final, amended
    }

    /// Text added after signing, with why.
    public struct Addendum: Sendable, Hashable, Codable {
        public var text: String
        public var reason: String
        public var author: String
        public var authorName: String
        public var signedMs: Int64
        /// SHA-256 over the report's hash before it and this addendum's fields.
        public var hash: String

        enum CodingKeys: String, CodingKey {
            case text, reason, author, authorName = "author_name", signedMs = "signed_ms", hash
        }
    }

    /// Who the report is about, copied from the study's header when signed, so the DICOM SR
    /// can be made after the images are gone.
    public struct Subject: Sendable, Hashable, Codable {
        public var patientName = ""
        public var patientID = ""
        public var patientBirthDate = ""
        public var patientSex = ""
        public var accessionNumber = ""
        public var studyDate = ""
        public var studyTime = ""
        public var studyID = ""
        public var referringPhysicianName = ""
        public var studyDescription = ""
        /// The hospital's Timezone Offset From UTC (0008,0201), e.g. `+0800`, when it sent one.
        public var timezoneOffset = ""
        public init() {}

        enum CodingKeys: String, CodingKey {
            case patientName = "patient_name", patientID = "patient_id", patientBirthDate = "patient_birth_date", patientSex = "patient_sex"
            case accessionNumber = "accession_number", studyDate = "study_date", studyTime = "study_time", studyID = "study_id"
            case referringPhysicianName = "referring_physician_name", studyDescription = "study_description", timezoneOffset = "timezone_offset"
        }
    }

    public var study: String
    public var caseID: String
    public var status: Status
    public var findings: String
    public var impression: String
    public var critical: Bool
    public var author: String
    public var authorName: String
    public var updatedMs: Int64
    public var signedMs: Int64?
    /// SHA-256 of the signed content (`contentHash`); of the draft's content while a draft.
    public var hash: String
    public var addenda: [Addendum]
    public var subject: Subject?
    /// UIDs of the report's DICOM SR form, fixed when signed so every copy is the same object.
    public var srSeriesUID: String?
    public var srInstanceUID: String?

    public init(study: String, caseID: String, status: Status, findings: String, impression: String, critical: Bool,
                author: String, authorName: String, updatedMs: Int64, signedMs: Int64? = nil, addenda: [Addendum] = [], subject: Subject? = nil) {
        self.study = study
        self.caseID = caseID
        self.status = status
        self.findings = findings
        self.impression = impression
        self.critical = critical
        self.author = author
        self.authorName = authorName
        self.updatedMs = updatedMs
        self.signedMs = signedMs
        self.addenda = addenda
        self.subject = subject
        self.hash = ""
        self.hash = contentHash
    }

    enum CodingKeys: String, CodingKey {
        case study, caseID = "case", status, findings, impression, critical, author, authorName = "author_name"
        case updatedMs = "updated_ms", signedMs = "signed_ms", hash, addenda, subject
        case srSeriesUID = "sr_series_uid", srInstanceUID = "sr_instance_uid"
    }

    /// SHA-256 over what the expert signs: study, case, author, critical flag, findings, impression.
    public var contentHash: String {
        Self.sha256([study, caseID, author, critical ? "critical" : "not-critical", findings, impression].joined(separator: "\n"))
    }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { hex($0) }.joined()
    }

    /// Checks sizes and characters (the error names the field, never its text).
    public func validate() throws(StudyStoreError) {
        for (field, text, limit) in [("findings", findings, 65_536), ("impression", impression, 16_384)] {
            guard text.utf8.count <= limit else { throw StudyStoreError(.invalidInput, "\(field): at most \(limit) bytes") }
            guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\r" && $0 != "\t" }) else {
                throw StudyStoreError(.invalidInput, "\(field): control characters are not allowed")
            }
        }
        if status != .draft {
            guard !impression.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw StudyStoreError(.invalidInput, "impression: a signed report needs an impression")
            }
        }
    }

    /// The next addendum for this report.
    public func addendum(text: String, reason: String, author: String, authorName: String, at time: Int64) throws(StudyStoreError) -> Addendum {
        let cleanText = text.trimmingCharacters(in: .whitespacesAndNewlines), cleanReason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !cleanText.isEmpty, cleanText.utf8.count <= 16_384 else { throw StudyStoreError(.invalidInput, "addendum: 1 to 16384 bytes of text") }
        guard !cleanReason.isEmpty, cleanReason.utf8.count <= 1024 else { throw StudyStoreError(.invalidInput, "reason: an addendum needs a reason (at most 1024 bytes)") }
        let previous = addenda.last?.hash ?? hash
        let digest = Self.sha256([previous, cleanText, cleanReason, author, String(time)].joined(separator: "\n"))
        return Addendum(text: cleanText, reason: cleanReason, author: author, authorName: authorName, signedMs: time, hash: digest)
    }

    /// The report as the API shows it: without the copied patient identity and the SR's UIDs
    /// (the reader already has the study; the SR form carries both).
    public func publicObject() throws -> [String: Any] {
        var copy = self
        copy.subject = nil
        copy.srSeriesUID = nil
        copy.srInstanceUID = nil
        return (try JSONSerialization.jsonObject(with: Data(try copy.json())) as? [String: Any]) ?? [:]
    }

    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> StudyReport {
        try JSONDecoder().decode(StudyReport.self, from: Data(bytes))
    }
}

extension StudyStore {
    static let reportScript = RedisScript(StudyStoreLua.report)

    public enum ReportWrite: String, Sendable {
        case draft, final, addendum
    }

    public enum ReportWriteOutcome: Sendable, Equatable {
        /// Stored; the report is now in this status.
        case stored(StudyReport.Status)
        /// The same content was signed before (a retried request): nothing changed.
        case alreadySigned
    }

    /// Stores a report step with its audit entry in the study's chain (one script). Throws
    /// `study.unknown`, or `study.notApplicable` when the step does not fit the report's
    /// status (a draft or a second signature after signing, an addendum before it).
    public func writeReport(_ report: StudyReport, operation: ReportWrite, actor: AuditActor) async throws -> ReportWriteOutcome {
        let uid = try StudyUID(report.study)
        try report.validate()
        let hash = operation == .addendum ? (report.addenda.last?.hash ?? report.hash) : report.hash
        let reply = try await client.evalScript(Self.reportScript, keys: scriptKeys(uid) + [RedisArgument(keys.study(uid).report)],
                                                arguments: [RedisArgument(actor.description), RedisArgument(operation.rawValue), RedisArgument(bytes: try report.json()),
                                                            RedisArgument(hash), RedisArgument(report.caseID), RedisArgument(report.author)])
        let parts = (try reply.throwingServerError().array ?? []).map { $0.string ?? "" }
        switch parts.first {
        case "ok": return .stored(StudyReport.Status(rawValue: parts.count > 1 ? parts[1] : "") ?? report.status)
        case "same": return .alreadySigned
        default:
            let code = parts.count > 1 ? parts[1] : ""
            switch code {
            case "unknown": throw StudyStoreError(.unknown, "no such study")
            case "signed": throw StudyStoreError(.notApplicable, "the report is already signed; add an addendum instead")
            case "unsigned": throw StudyStoreError(.notApplicable, "an addendum needs a signed report")
            default: throw StudyStoreError(.malformedRecord, "unexpected reply from the report script")
            }
        }
    }

    /// The study's report, if any.
    public func report(_ uid: StudyUID) async throws -> StudyReport? {
        guard let bytes = try await client.send("GET", RedisArgument(keys.study(uid).report)).bytes else { return nil }
        do {
            return try StudyReport.decode(bytes)
        } catch {
            throw StudyStoreError(.malformedRecord, "the stored report of a study cannot be read")
        }
    }
}
