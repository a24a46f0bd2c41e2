import Crypto
import Foundation
import RadGridCore
import RedisClient

/// The audit trail as FHIR R4 `AuditEvent` resources, for the regulator's supervision
/// platform: one resource per audit entry, with the entry's chain and hash kept as entity
/// details so the platform can check them against the signed checkpoints.
public enum FHIRAuditEvent {
    static let dcm = "http://dicom.nema.org/resources/ontology/DCM"

    /// The DICOM audit event type (PS3.15 A.5 / DCM codes) of an action.
    static func eventType(_ action: String) -> (code: String, display: String) {
        switch true {
        case action.hasPrefix("auth."): ("110114", "User Authentication")
        case action.hasPrefix("admin."): ("110100", "Application Activity")
        case action == "result.sent" || action.hasPrefix("report.fetched") || action.hasPrefix("export"): ("110106", "Export")
        case action.hasPrefix("study.received") || action.hasPrefix("instance"): ("110107", "Import")
        case action.hasPrefix("qido") || action.hasPrefix("query"): ("110112", "Query")
        default: ("110110", "Patient Record")
        }
    }

    /// C(reate), R(ead), U(pdate), D(elete) or E(xecute), from how the action ends (`tokensRevoked`: D).
    static func actionCode(_ action: String) -> String {
        let verb = action.split(separator: ".").last.map(String.init)?.lowercased() ?? ""
        if ["received", "stored", "issued", "created", "registered", "raised", "imported"].contains(where: { verb.hasSuffix($0) }) { return "C" }
        if ["viewed", "read", "fetched", "opened", "rendered", "retrieved", "listed"].contains(where: { verb.hasSuffix($0) }) { return "R" }
        if ["purged", "revoked", "removed", "deleted", "expired"].contains(where: { verb.hasSuffix($0) }) { return "D" }
        if ["assigned", "accepted", "declined", "changed", "set", "signed", "amended", "updated", "committed", "retried", "requeued", "completed"]
            .contains(where: { verb.hasSuffix($0) }) { return "U" }
        return "E"
    }

    /// One entry as an `AuditEvent` (a JSON object).
    public static func resource(_ record: AuditRecord) -> [String: Any] {
        let type = eventType(record.action)
        let id = SHA256.hash(data: Array("\(record.chain)/\(record.id)".utf8)).prefix(20).map { String(format: "%02x", $0) }.joined()
        let recorded = Date(timeIntervalSince1970: Double(record.timestampMilliseconds) / 1000)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let actor = AuditActor(record.actor)
        var agent: [String: Any] = [
            "who": ["identifier": ["system": "urn:radgrid:actor", "value": record.actor]],
            "requestor": actor.map { [.site, .expert, .qc, .admin].contains($0.kind) } ?? false,
        ]
        if let actor {
            agent["type"] = ["coding": [["system": "urn:radgrid:actor-kind", "code": actor.kind.rawValue]]]
        }
        var details: [[String: Any]] = [
            ["type": "chain", "valueString": record.chain],
            ["type": "entry", "valueString": record.id],
            ["type": "hash", "valueString": record.hash],
        ]
        if !record.details.isEmpty { details.append(["type": "details", "valueString": record.details]) }
        var entity: [String: Any] = [
            "type": ["system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"],
            "detail": details,
        ]
        if !record.study.isEmpty {
            entity["what"] = ["identifier": ["system": "urn:dicom:uid", "value": "urn:oid:\(record.study)"]]
        }
        return [
            "resourceType": "AuditEvent",
            "id": id,
            "type": ["system": dcm, "code": type.code, "display": type.display],
            "subtype": [["system": "urn:radgrid:audit-action", "code": record.action]],
            "action": actionCode(record.action),
            "recorded": formatter.string(from: recorded),
            "outcome": "0",
            "agent": [agent],
            "source": [
                "site": "RadGrid",
                "observer": ["display": "RadGrid audit chain \(record.chain)"],
                "type": [["system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"]],
            ],
            "entity": [entity],
        ]
    }

    /// Every entry of every registered chain recorded in [since, until) (milliseconds), in
    /// time order. Stream ids carry Redis's clock, so each chain is read by id range.
    public static func entries(client: RedisClient, prefix: KeyPrefix, sinceMilliseconds: Int64, untilMilliseconds: Int64) async throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        for chain in try await AuditTrail.chains(client: client, prefix: prefix) {
            let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
            var start = String(sinceMilliseconds)
            while true {
                let page = try await client.send("XRANGE", RedisArgument(trail.logKey), RedisArgument(start), RedisArgument("(\(untilMilliseconds)"), "COUNT", "1000")
                let items = page.array ?? []
                for item in items {
                    if let record = AuditTrail.record(item, chain: chain) { records.append(record) }
                }
                guard items.count == 1000, let last = records.last else { break }
                start = "(" + last.id
            }
        }
        return records.sorted { ($0.timestampMilliseconds, $0.chain, $0.id) < ($1.timestampMilliseconds, $1.chain, $1.id) }
    }

    /// A `Bundle` (type collection) of the resources.
    public static func bundle(_ resources: [[String: Any]], timestamp: Date = Date()) -> [String: Any] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return [
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": formatter.string(from: timestamp),
            "entry": resources.map { ["fullUrl": "urn:uuid:\(uuid(from: $0["id"] as? String ?? ""))", "resource": $0] },
        ]
    }

    /// A UUID-shaped name for a resource id (Bundle entries need a full URL).
    static func uuid(from id: String) -> String {
        let hex = Array(SHA256.hash(data: Array(id.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined())
        return "\(String(hex[0..<8]))-\(String(hex[8..<12]))-\(String(hex[12..<16]))-\(String(hex[16..<20]))-\(String(hex[20..<32]))"
    }
}
