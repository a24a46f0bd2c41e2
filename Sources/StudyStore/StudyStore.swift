import Audit
import Logging
import Metrics
import RadGridCore
import RedisClient

/// The grid's record of studies and their instances, in Redis.
///
/// Per study (hash tag `{s:<uid>}`, one cluster slot): `rg:{s:<uid>}:study` (hash),
/// `rg:{s:<uid>}:instances` (hash sop → series|bytes|sha256|modality), `rg:{s:<uid>}:blob:<sop>`
/// (zstd-compressed instance) and the study's audit chain `rg:{s:<uid>}:audit:*`.
/// Global indexes, written after the per-study script and idempotent so a retry repairs
/// them: `rg:studies:open` (zset uid → last instance time, for stable-age commit),
/// `rg:studies:all` (zset uid → creation time), `rg:studies:committed` (stream the
/// coordinator consumes), `rg:studies:state:<state>` (sets, for status counts).
public struct StudyStore: Sendable {
    public let client: RedisClient
    public let prefix: KeyPrefix

    public init(client: RedisClient, prefix: KeyPrefix = .default) {
        self.client = client
        self.prefix = prefix
    }

    // MARK: Keys

    public func studyKey(_ uid: String) -> String { "\(prefix.value){s:\(uid)}:study" }
    public func instancesKey(_ uid: String) -> String { "\(prefix.value){s:\(uid)}:instances" }
    public func blobKey(_ uid: String, sop: String) -> String { "\(prefix.value){s:\(uid)}:blob:\(sop)" }
    public var openKey: String { prefix.value + "studies:open" }
    public var allKey: String { prefix.value + "studies:all" }
    /// The stream of committed studies, consumed by the coordinator (field `study`).
    public var committedStreamKey: String { prefix.value + "studies:committed" }
    public func stateKey(_ state: StudyState) -> String { prefix.value + "studies:state:" + state.rawValue }

    /// The study's own audit chain (its hash tag is the study's).
    public func audit(_ uid: String) -> AuditTrail { AuditTrail(client: client, prefix: prefix, chain: "s:\(uid)") }

    private func auditKeys(_ uid: String) -> [RedisArgument] {
        audit(uid).scriptKeys(study: uid).map { RedisArgument($0) }
    }

    // MARK: Intake

    public enum StoreOutcome: String, Sendable {
        /// A new instance of an open study.
        case stored
        /// The same SOP instance was already stored: nothing changed.
        case duplicate
        /// A new instance of a study already committed: stored and counted as late.
        case late
    }

    /// Stores one compressed instance; resending the same SOP instance is a no-op.
    /// Throws `study.forbidden` when the study belongs to another site.
    @discardableResult
    public func storeInstance(site: String, header: InstanceHeader, priority: StudyPriority, compressed: [UInt8], rawSize: Int, sha256: String) async throws -> StoreOutcome {
        try Self.validateUID(header.studyInstanceUID, "StudyInstanceUID")
        try Self.validateUID(header.sopInstanceUID, "SOPInstanceUID")
        try Self.validateUID(header.seriesInstanceUID, "SeriesInstanceUID")
        try Self.validateSite(site)
        let uid = header.studyInstanceUID
        let keys = [RedisArgument(studyKey(uid)), RedisArgument(instancesKey(uid)), RedisArgument(blobKey(uid, sop: header.sopInstanceUID))] + auditKeys(uid)
        let arguments: [RedisArgument] = [
            RedisArgument(site), RedisArgument(header.sopInstanceUID), RedisArgument(header.seriesInstanceUID),
            RedisArgument(Self.clean(header.modality)), RedisArgument(Self.clean(header.bodyPart)), RedisArgument(priority.rawValue),
            RedisArgument(rawSize), RedisArgument(sha256), RedisArgument(compressed), RedisArgument(compressed.count),
        ]
        let reply = try await client.evalScript(StudyScripts.storeInstance, keys: keys, arguments: arguments)
        guard let fields = reply.array, let outcome = fields.first?.string else {
            throw RedisError(.unexpectedReply, "store script returned \(reply)")
        }
        if outcome == "forbidden" { throw StudyStoreError.forbidden("study belongs to another site") }
        let result = StoreOutcome(rawValue: outcome) ?? .stored
        // Indexes outside the study's slot; idempotent, so a resend after a crash repairs them.
        let chain = audit(uid)
        var index: [RedisCommand] = [
            RedisCommand("ZADD", RedisArgument(allKey), "NX", RedisArgument(WallClock.nowMilliseconds()), RedisArgument(uid)),
            RedisCommand("SADD", RedisArgument(chain.chainsKey), RedisArgument(chain.chain)),
        ]
        if result != .late, fields.count > 1, fields[1].string == StudyState.received.rawValue {
            index.append(RedisCommand("ZADD", RedisArgument(openKey), RedisArgument(WallClock.nowMilliseconds()), RedisArgument(uid)))
            index.append(RedisCommand("SADD", RedisArgument(stateKey(.received)), RedisArgument(uid)))
        }
        if result == .late {
            // Let the coordinator decide what a late instance means for the study.
            index.append(RedisCommand("XADD", RedisArgument(committedStreamKey), "MAXLEN", "~", "100000", "*", "study", RedisArgument(uid), "late", RedisArgument(header.sopInstanceUID)))
        }
        for reply in try await client.pipeline(index) { try reply.throwingServerError() }
        return result
    }

    public enum CommitOutcome: Sendable, Equatable {
        case committed(instances: Int)
        case alreadyCommitted(instances: Int)
    }

    /// Marks a study complete (explicitly, or by the stable-age sweeper) and hands it to
    /// the coordinator. `site` restricts the commit to the owning site ('' for staff).
    @discardableResult
    public func commit(study uid: String, actor: AuditActor, reason: String, site: String = "") async throws -> CommitOutcome {
        try Self.validateUID(uid, "StudyInstanceUID")
        let reply = try await client.evalScript(StudyScripts.commit, keys: [RedisArgument(studyKey(uid))] + auditKeys(uid),
                                                arguments: [RedisArgument(actor.description), RedisArgument(reason), RedisArgument(site)])
        guard let fields = reply.array, fields.count == 2, let outcome = fields[0].string else {
            throw RedisError(.unexpectedReply, "commit script returned \(reply)")
        }
        let instances = Int(fields[1].int ?? 0)
        switch outcome {
        case "unknown": throw StudyStoreError.unknown("no study with that StudyInstanceUID")
        case "forbidden": throw StudyStoreError.forbidden("study belongs to another site")
        case "already":
            _ = try await client.send("ZREM", RedisArgument(openKey), RedisArgument(uid))
            return .alreadyCommitted(instances: instances)
        default:
            for reply in try await client.pipeline([
                RedisCommand("ZREM", RedisArgument(openKey), RedisArgument(uid)),
                RedisCommand("XADD", RedisArgument(committedStreamKey), "MAXLEN", "~", "100000", "*", "study", RedisArgument(uid)),
            ]) { try reply.throwingServerError() }
            return .committed(instances: instances)
        }
    }

    /// Open studies whose last instance arrived before `cutoffMilliseconds`.
    public func openStudies(lastInstanceBefore cutoffMilliseconds: Int64, limit: Int = 100) async throws -> [String] {
        let reply = try await client.send("ZRANGE", RedisArgument(openKey), "-inf", RedisArgument("(\(cutoffMilliseconds)"), "BYSCORE", "LIMIT", "0", RedisArgument(limit))
        return (reply.array ?? []).compactMap(\.string)
    }

    // MARK: State machine

    /// Moves a study to `target` if its current state may precede it (or is in `from`),
    /// recording `action` in its audit chain in the same script. Returns the previous state.
    @discardableResult
    public func transition(study uid: String, to target: StudyState, from: [StudyState]? = nil, actor: AuditActor, action: String, details: String = "", fields: [String: String] = [:]) async throws -> StudyState {
        let allowed = from ?? StudyState.predecessors(of: target)
        var arguments: [RedisArgument] = [
            RedisArgument(allowed.map(\.rawValue).joined(separator: ",")), RedisArgument(target.rawValue),
            RedisArgument(actor.description), RedisArgument(action), RedisArgument(details),
        ]
        for (field, value) in fields.sorted(by: { $0.key < $1.key }) {
            guard !Self.reservedFields.contains(field) else { throw StudyStoreError.invalidInput("field '\(field)' is managed by the store") }
            arguments.append(RedisArgument(field))
            arguments.append(RedisArgument(value))
        }
        let reply = try await client.evalScript(StudyScripts.transition, keys: [RedisArgument(studyKey(uid))] + auditKeys(uid), arguments: arguments)
        guard let result = reply.array, result.count == 2, let outcome = result[0].string else {
            throw RedisError(.unexpectedReply, "transition script returned \(reply)")
        }
        switch outcome {
        case "unknown": throw StudyStoreError.unknown("no study with that StudyInstanceUID")
        case "conflict":
            throw StudyStoreError.invalidTransition("study is \(result[1].string ?? "?"), cannot move to \(target.rawValue)")
        default:
            let previous = StudyState(rawValue: result[1].string ?? "") ?? .received
            for reply in try await client.pipeline([
                RedisCommand("SREM", RedisArgument(stateKey(previous)), RedisArgument(uid)),
                RedisCommand("SADD", RedisArgument(stateKey(target)), RedisArgument(uid)),
            ]) { try reply.throwingServerError() }
            return previous
        }
    }

    static let reservedFields: Set<String> = ["uid", "site", "state", "committed", "instances", "rawBytes", "storedBytes", "late", "createdAt", "updatedAt", "lastInstanceAt"]

    // MARK: Reading

    public func study(_ uid: String) async throws -> StudyRecord? {
        let reply = try await client.send("HGETALL", RedisArgument(studyKey(uid)))
        guard let fields = reply.fieldMap, !fields.isEmpty else { return nil }
        func text(_ name: String) -> String { fields[name]?.string ?? "" }
        func number(_ name: String) -> Int64 { fields[name]?.int ?? 0 }
        let known: Set<String> = ["uid", "site", "state", "priority", "modality", "bodyPart", "instances", "rawBytes", "storedBytes", "late", "committed", "createdAt", "updatedAt", "lastInstanceAt"]
        var attributes: [String: String] = [:]
        for (name, value) in fields where !known.contains(name) { attributes[name] = value.string ?? "" }
        return StudyRecord(
            studyInstanceUID: text("uid"), site: text("site"), state: StudyState(rawValue: text("state")) ?? .received,
            priority: StudyPriority(rawValue: text("priority")) ?? .routine, modality: text("modality"), bodyPart: text("bodyPart"),
            instances: Int(number("instances")), rawBytes: number("rawBytes"), storedBytes: number("storedBytes"),
            lateInstances: Int(number("late")), committed: text("committed") == "1",
            createdAtMilliseconds: number("createdAt"), updatedAtMilliseconds: number("updatedAt"),
            lastInstanceAtMilliseconds: number("lastInstanceAt"), attributes: attributes
        )
    }

    /// SOP Instance UIDs of a study, sorted.
    public func instanceUIDs(_ uid: String) async throws -> [String] {
        (try await client.send("HKEYS", RedisArgument(instancesKey(uid))).array ?? []).compactMap(\.string).sorted()
    }

    /// The compressed bytes of one instance, or nil when absent (never stored, or deleted by retention).
    public func compressedInstance(study uid: String, sop: String) async throws -> [UInt8]? {
        let reply = try await client.send("GET", RedisArgument(blobKey(uid, sop: sop)))
        return reply.isNull ? nil : reply.bytes
    }

    /// Number of studies in each state.
    public func countsByState() async throws -> [StudyState: Int] {
        let replies = try await client.pipeline(StudyState.allCases.map { RedisCommand("SCARD", RedisArgument(stateKey($0))) })
        var counts: [StudyState: Int] = [:]
        for (state, reply) in zip(StudyState.allCases, replies) { counts[state] = Int(reply.int ?? 0) }
        return counts
    }

    /// Retention: deletes a study's compressed instances (the record and audit stay).
    public func deleteBlobs(study uid: String, actor: AuditActor) async throws -> Int {
        let sops = try await instanceUIDs(uid)
        guard !sops.isEmpty else { return 0 }
        let deleted = try await client.send(["UNLINK"] + sops.map { RedisArgument(blobKey(uid, sop: $0)) }).int ?? 0
        try await audit(uid).append(actor: actor, action: "study.blobsDeleted", study: uid, details: "instances=\(deleted)")
        return Int(deleted)
    }

    // MARK: Validation

    /// DICOM UIDs: digits and dots, at most 64 characters (PS3.5 9.1).
    static func validateUID(_ uid: String, _ name: String) throws {
        guard !uid.isEmpty, uid.utf8.count <= 64, uid.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw StudyStoreError.invalidInput("\(name) is not a valid DICOM UID")
        }
    }

    static func validateSite(_ site: String) throws {
        guard !site.isEmpty, site.utf8.count <= 64, site.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
            throw StudyStoreError.invalidInput("site code must be 1-64 letters, digits, '-' or '_'")
        }
    }

    /// Code strings from headers (modality, body part): trimmed, uppercase letters/digits/_ only.
    static func clean(_ code: String) -> String {
        String(code.uppercased().unicodeScalars.filter { CharacterSetASCII.isCode($0) }.prefix(16).map(Character.init))
    }
}

enum CharacterSetASCII {
    static func isCode(_ scalar: Unicode.Scalar) -> Bool {
        (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9") || scalar == "_"
    }
}
