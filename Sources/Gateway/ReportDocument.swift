import DICOM
import Foundation
import StudyStore

/// A signed report as the DICOM object a hospital's PACS files with the study: a Basic Text
/// SR (TID 2000) in the study, its own series, with the patient as the hospital sent them.
public enum ReportDocument {
    /// `studyInstanceUID`: the study's UID as the hospital sent it, when the grid keeps the
    /// study under another key (a site's copy of a UID another site holds).
    public static func basicTextSR(_ report: StudyReport, studyInstanceUID: String? = nil) throws -> [UInt8] {
        let subject = report.subject ?? StudyReport.Subject()
        let signedAt = BasicTextSR.Timestamp(millisecondsSinceEpoch: report.signedMs ?? report.updatedMs)
        let author = BasicTextSR.Person(name: Self.personName(report.authorName, fallback: report.author), organization: "RadGrid")
        var sections: [BasicTextSR.Section] = []
        if !report.findings.isEmpty { sections.append(.findings(report.findings)) }
        sections.append(.impressions(report.impression))
        var document = BasicTextSR(patientName: subject.patientName, patientID: subject.patientID, studyInstanceUID: studyInstanceUID ?? report.study,
                                   seriesInstanceUID: report.srSeriesUID ?? "", sopInstanceUID: report.srInstanceUID ?? "",
                                   contentDateTime: signedAt, author: author, sections: sections)
        document.patientBirthDate = subject.patientBirthDate
        document.patientSex = subject.patientSex
        document.studyDate = subject.studyDate
        document.studyTime = subject.studyTime
        document.studyID = subject.studyID
        document.accessionNumber = subject.accessionNumber
        document.referringPhysicianName = subject.referringPhysicianName
        document.studyDescription = subject.studyDescription
        document.seriesNumber = 9001
        // The study's date and time are the hospital's local time; the offset applies to every
        // time in the file, so the report's own (UTC) times are shifted to the same zone.
        document.timeZoneOffsetMinutes = Self.offsetMinutes(subject.timezoneOffset) ?? 0
        document.verification = BasicTextSR.Verification(observerName: author.name, organization: "RadGrid", dateTime: signedAt)
        if report.critical {
            document.criticalResult = BasicTextSR.CriticalResult(text: "Critical result flagged by the reporting radiologist", flaggedAt: signedAt)
        }
        document.addenda = report.addenda.map { addendum in
            BasicTextSR.Addendum(text: addendum.text, reason: addendum.reason,
                                 author: BasicTextSR.Person(name: Self.personName(addendum.authorName, fallback: addendum.author), organization: "RadGrid"),
                                 dateTime: BasicTextSR.Timestamp(millisecondsSinceEpoch: addendum.signedMs))
        }
        return try document.encode()
    }

    /// `+0800` → 480, `-0530` → -330; nil when absent or malformed.
    static func offsetMinutes(_ text: String) -> Int? {
        let chars = Array(text.trimmingCharacters(in: .whitespaces))
        guard chars.count == 5, chars[0] == "+" || chars[0] == "-", let hours = Int(String(chars[1...2])), let minutes = Int(String(chars[3...4])),
              hours <= 14, minutes < 60 else { return nil }
        return (chars[0] == "-" ? -1 : 1) * (hours * 60 + minutes)
    }

    /// A display name as a DICOM person name: `^` separates the components, so free text
    /// keeps its spaces in the family-name component; PN components are at most 64 characters.
    static func personName(_ name: String, fallback: String) -> String {
        let clean = name.replacingOccurrences(of: "^", with: " ").replacingOccurrences(of: "=", with: " ").replacingOccurrences(of: "\\", with: " ")
        let text = clean.trimmingCharacters(in: .whitespaces).isEmpty ? fallback : clean
        return String(text.prefix(64))
    }
}
