import Foundation
import GridContract
import RedisClient

/// The study record's hash fields: the one place that names them and converts them.
enum RecordField {
    static let uid = "uid", site = "site", state = "state", version = "v", priority = "priority"
    static let modality = "modality", bodyPart = "bodyPart", instances = "instances"
    static let rawBytes = "rawBytes", storedBytes = "storedBytes", late = "late", committed = "committed"
    static let generation = "gen", recoveries = "recov", createdAt = "createdAt", updatedAt = "updatedAt"
    static let lastInstanceAt = "lastInstanceAt", caseID = "case", expert = "expert", caseEvent = "caseEvent"
    static let route = "route", screening = "screening", failure = "reason", failureDetail = "reasonDetail"
    static let blobsDeleted = "blobsDeleted", blobsDeferred = "blobsDeferred"
    /// Written once by the intake script (store-instance.lua), never by the state machine.
    static let consent = "consent"
    /// Written once by the intake script: the site's StudyInstanceUID of a site copy.
    static let dicomStudy = "dicomStudy"
}

enum RecordCodec {
    /// Reads a record from its hash fields.
    static func decode(_ fields: [String: RedisValue]) throws(StudyStoreError) -> StudyRecord? {
        guard !fields.isEmpty else { return nil }
        func text(_ name: String) -> String { fields[name]?.string ?? "" }
        func number(_ name: String) -> Int64 { fields[name]?.int ?? Int64(fields[name]?.string ?? "") ?? 0 }
        func optional(_ name: String) -> String? { text(name).isEmpty ? nil : text(name) }
        guard let state = StudyState(rawValue: text(RecordField.state)), let uid = try? StudyUID(text(RecordField.uid)),
              let site = try? SiteID(text(RecordField.site)) else {
            throw StudyStoreError(.malformedRecord, "a study record lacks a valid uid, site or state")
        }
        var record = StudyRecord(uid: uid, site: site, state: state, version: Int(number(RecordField.version)),
                                 priority: Priority(name: text(RecordField.priority)) ?? .routine,
                                 modality: text(RecordField.modality), bodyPart: text(RecordField.bodyPart),
                                 instances: Int(number(RecordField.instances)), rawBytes: number(RecordField.rawBytes),
                                 storedBytes: number(RecordField.storedBytes), lateInstances: Int(number(RecordField.late)),
                                 committed: text(RecordField.committed) == "1", generation: Int(number(RecordField.generation)),
                                 recoveries: Int(number(RecordField.recoveries)), createdAt: number(RecordField.createdAt),
                                 updatedAt: number(RecordField.updatedAt), lastInstanceAt: number(RecordField.lastInstanceAt))
        record.caseID = optional(RecordField.caseID).flatMap { try? CaseID($0) }
        record.expert = optional(RecordField.expert).flatMap { try? ExpertID($0) }
        record.lastCaseEvent = optional(RecordField.caseEvent).flatMap(StreamEntryID.init)
        record.route = optional(RecordField.route).flatMap { try? JSONDecoder().decode(RouteDecision.self, from: Data($0.utf8)) }
        record.screening = optional(RecordField.screening).flatMap { try? JSONDecoder().decode(ScreeningOutcome.self, from: Data($0.utf8)) }
        record.failure = optional(RecordField.failure).map { StudyFailure($0, text(RecordField.failureDetail)) }
        record.blobsDeleted = text(RecordField.blobsDeleted) == "1"
        record.blobsDeferred = text(RecordField.blobsDeferred) == "1"
        record.consentReference = optional(RecordField.consent)
        record.dicomStudyUID = optional(RecordField.dicomStudy).flatMap { try? StudyUID($0) }
        return record
    }

    /// The fields the machine may change, as stored text (nil: absent).
    static func mutableFields(_ record: StudyRecord) -> [(String, String?)] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T?) -> String? {
            value.flatMap { try? encoder.encode($0) }.map { String(decoding: $0, as: UTF8.self) }
        }
        return [
            (RecordField.priority, record.priority.rawValue),
            (RecordField.committed, record.committed ? "1" : "0"),
            (RecordField.generation, String(record.generation)),
            (RecordField.recoveries, String(record.recoveries)),
            (RecordField.caseID, record.caseID?.rawValue),
            (RecordField.expert, record.expert?.rawValue),
            (RecordField.caseEvent, record.lastCaseEvent?.description),
            (RecordField.route, json(record.route)),
            (RecordField.screening, json(record.screening)),
            (RecordField.failure, record.failure?.code),
            (RecordField.failureDetail, record.failure?.detail),
        ]
    }

    /// What to write to turn `old` into `new`: fields to set and fields to delete.
    static func difference(from old: StudyRecord, to new: StudyRecord) -> (set: [(String, String)], delete: [String]) {
        var set: [(String, String)] = []
        var delete: [String] = []
        for ((name, before), (_, after)) in zip(mutableFields(old), mutableFields(new)) where before != after {
            if let after { set.append((name, after)) } else { delete.append(name) }
        }
        return (set, delete)
    }
}
