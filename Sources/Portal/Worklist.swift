import Accounts
import DICOM
import Foundation
import RedisClient
import GridContract
import QualityControl
import Routing
import StudyStore

/// The worklist and case views: router cases joined with their studies' records.
struct Worklist: Sendable {
    let store: StudyStore
    let router: ExpertRouter
    let images: StudyImages
    let access: Access

    /// The expert's offered and accepted cases, STAT first, then by deadline.
    func cases(for expert: String) async throws -> [[String: Any]] {
        let infos = try await router.caseInfos(try await router.heldCases(expert: expert)).compactMap { $0 }
            .filter { ($0.state == "offered" || $0.state == "accepted") && $0.expert == expert }
        // Two pipelines whatever the worklist's length: case → study, then the study records.
        let studies = try await access.studyUIDs(for: infos)
        let known = studies.compactMap { $0 }
        var records: [StudyUID: StudyRecord] = [:]
        for (uid, record) in zip(known, try await store.records(known)) { records[uid] = record }
        var rows = zip(infos, studies).map { info, uid in (info, summary(info, uid.flatMap { records[$0] })) }
        rows.sort { a, b in
            let pa = Priority(name: a.0.effectivePriority)?.rank ?? 9, pb = Priority(name: b.0.effectivePriority)?.rank ?? 9
            return pa != pb ? pa < pb : a.0.deadline < b.0.deadline
        }
        return rows.map(\.1)
    }

    /// One case as the worklist shows it: no patient data (an offer is not yet a right to read).
    func summary(_ info: CaseInfo, _ record: StudyRecord?) -> [String: Any] {
        var row: [String: Any] = [
            "id": info.id, "state": info.state, "priority": info.priority, "effective_priority": info.effectivePriority,
            "specialty": info.specialty, "site": info.site, "deadline_ms": info.deadline, "escalated": info.escalated,
            "accept_by_ms": info.state == "offered" ? (info.acceptBy.map { $0 as Any } ?? NSNull()) : NSNull(),
            "kind": info.kind.rawValue,
        ]
        row["study"] = record?.uid.rawValue ?? NSNull()
        row["modality"] = record?.modality ?? ""
        row["body_part"] = record?.bodyPart ?? ""
        row["instances"] = record?.instances ?? 0
        row["urgency"] = record?.screening?.urgency.rawValue ?? "none"
        row["partial"] = record?.screening?.isPartial ?? false
        row["findings"] = (record?.screening?.findings ?? []).map(Self.finding)
        return row
    }

    static func finding(_ finding: ScreeningFinding) -> [String: Any] {
        ["code": finding.code, "probability": (finding.probability * 1000).rounded() / 1000, "series": finding.series?.rawValue ?? NSNull(), "source": finding.source]
    }

    /// The case view: the summary, the study with its patient as the hospital wrote it, the
    /// series and instances in reading order, and the report.
    func detail(_ info: CaseInfo, record: StudyRecord, withPatient: Bool) async throws -> [String: Any] {
        var result: [String: Any] = ["case": summary(info, record)]
        let entries = try await store.instances(record.uid)
        let outcomes = try await store.outcomes(record.uid)
        let thumbnails = Set(try await store.client.send("HKEYS", RedisArgument(store.keys.study(record.uid).thumbnails)).array?.compactMap(\.string) ?? [])
        let headers = withPatient ? try await images.headers(record.uid, entries.map(\.sop)) : [:]
        var study: [String: Any] = ["uid": record.uid.rawValue, "state": record.state.rawValue, "modality": record.modality, "body_part": record.bodyPart,
                                    "instances": record.instances, "priority": record.priority.rawValue, "received_ms": record.createdAt]
        if withPatient, let first = entries.lazy.compactMap({ headers[$0.sop] }).first {
            study["patient_name"] = first.string(.patientName) ?? ""
            for (key, keyword) in [("patient_id", "PatientID"), ("patient_birth_date", "PatientBirthDate"), ("patient_sex", "PatientSex"),
                                   ("study_description", "StudyDescription"), ("study_date", "StudyDate"), ("accession_number", "AccessionNumber")] {
                study[key] = first.string(keyword) ?? ""
            }
        }
        result["study"] = study

        struct Row { var sop: String; var series: String; var number: Int; var position: Double; var status: String; var frames: Int }
        var rows: [Row] = []
        var seriesInfo: [String: [String: Any]] = [:]
        var seriesOrder: [String: (number: Int, first: String)] = [:]
        for entry in entries {
            let header = headers[entry.sop]
            let series = entry.series?.rawValue ?? header?.string(.seriesInstanceUID) ?? ""
            let status: String = switch outcomes[entry.sop] {
            case .image?: "ok"
            case .nonImage?: "not-image"
            case .failed?: "failed"
            case nil: record.blobsDeleted ? "released" : "pending"
            }
            let position = header?.doubles(Tag(0x0020, 0x0032)).flatMap { $0.count == 3 ? $0[2] : nil } ?? 0
            rows.append(Row(sop: entry.sop.rawValue, series: series, number: header?.int(.instanceNumber) ?? 0, position: position,
                            status: status, frames: max(1, header?.int(.numberOfFrames) ?? 1)))
            if seriesInfo[series] == nil {
                var item: [String: Any] = ["uid": series, "modality": header?.string(.modality) ?? entry.modality, "instances": 0, "thumbnail": thumbnails.contains(series)]
                item["description"] = header?.string("SeriesDescription") ?? ""
                item["number"] = header?.int(Tag(0x0020, 0x0011)) ?? 0
                if let center = header?.double(.windowCenter), let width = header?.double(.windowWidth) {
                    item["window"] = ["center": center, "width": width]
                } else {
                    item["window"] = NSNull()
                }
                seriesInfo[series] = item
                seriesOrder[series] = (header?.int(Tag(0x0020, 0x0011)) ?? 0, series)
            }
            let counted = (seriesInfo[series]?["instances"] as? Int) ?? 0
            seriesInfo[series]?["instances"] = counted + 1
        }
        rows.sort { a, b in
            if a.series != b.series {
                let sa = seriesOrder[a.series]?.number ?? 0, sb = seriesOrder[b.series]?.number ?? 0
                return sa != sb ? sa < sb : a.series < b.series
            }
            return a.number != b.number ? a.number < b.number : (a.position != b.position ? a.position < b.position : a.sop < b.sop)
        }
        result["series"] = seriesOrder.sorted { $0.value.number != $1.value.number ? $0.value.number < $1.value.number : $0.key < $1.key }
            .compactMap { seriesInfo[$0.key] }
        result["instances"] = rows.map { ["sop": $0.sop, "series": $0.series, "number": $0.number, "status": $0.status, "frames": $0.frames] as [String: Any] }
        result["findings"] = (record.screening?.findings ?? []).map(Self.finding)
        if info.kind == .review {
            // Blinded: the second reader sees the first report only after scoring it.
            result["report"] = NSNull()
            result["review"] = ["blinded": true, "scores": RadpeerScore.allCases.map { ["score": $0.rawValue, "meaning": $0.meaning] }] as [String: Any]
        } else if let report = try await store.report(record.uid) {
            result["report"] = try ReportView.object(report)
        } else {
            result["report"] = NSNull()
        }
        return result
    }
}

