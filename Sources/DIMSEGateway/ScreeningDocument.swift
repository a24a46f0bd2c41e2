import Crypto
import DICOM
import Foundation
import GridContract

/// The AI pre-screen of a study as a Basic Text SR the site's PACS files with the study: one
/// findings section that says plainly it is a machine pre-screen, not a report.
enum ScreeningDocument {
    static func basicTextSR(_ screening: ScreeningOutcome, study: StudyUID, version: String, subject: DataSet) throws -> [UInt8] {
        var lines = ["Automated pre-screen by RadGrid (not a diagnostic report; a radiologist reads every study).",
                     "Urgency: \(screening.urgency.rawValue); highest suspicion score \(String(format: "%.2f", screening.score)).",
                     "Series screened: \(screening.series); images: \(screening.screenedImages)."]
        if screening.findings.isEmpty {
            lines.append("No finding above the screeners' thresholds.")
        } else {
            for finding in screening.findings.sorted(by: { $0.probability > $1.probability }) {
                lines.append("Finding \(finding.code): probability \(String(format: "%.2f", finding.probability)) (\(finding.source)).")
            }
        }
        let now = BasicTextSR.Timestamp(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000))
        var document = BasicTextSR(patientName: subject.string(.patientName) ?? "", patientID: subject.string(.patientID) ?? "",
                                   studyInstanceUID: study.rawValue,
                                   seriesInstanceUID: uid(study.rawValue + "|screening-series"),
                                   sopInstanceUID: uid(study.rawValue + "|screening|" + version),
                                   contentDateTime: now, author: BasicTextSR.Person(name: "RadGrid pre-screen", organization: "RadGrid"),
                                   sections: [.findings(lines.joined(separator: "\n"))])
        document.patientBirthDate = subject.string(.patientBirthDate) ?? ""
        document.patientSex = subject.string(.patientSex) ?? ""
        document.studyDate = subject.string(.studyDate) ?? ""
        document.studyTime = subject.string(.studyTime) ?? ""
        document.studyID = subject.string(.studyID) ?? ""
        document.accessionNumber = subject.string(.accessionNumber) ?? ""
        document.seriesNumber = 9002
        document.completed = true
        return try document.encode()
    }

    /// A UID under 2.25 (PS3.5 B.2) from a SHA-256 of `seed`: the same result gets the same UID,
    /// so a resend replaces rather than duplicates it in the PACS.
    static func uid(_ seed: String) -> String {
        let digest = Array(SHA256.hash(data: Array(seed.utf8)))
        var value: UInt128 = 0
        for byte in digest.prefix(16) { value = value << 8 | UInt128(byte) }
        return "2.25." + String(value >> 1)
    }
}
