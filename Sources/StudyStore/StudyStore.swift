import Audit
import BlobSealing
import GridContract
import Logging
import Metrics
import RadGridCore
import RedisClient
import StudyLifecycle
import Synchronization

/// The grid's record of studies and their instances, in Redis (key layout: `GridKeys`).
///
/// Every change of a study goes through `handle(_:study:...)`: read the record, let the
/// `StudyStateMachine` decide, store the decision with its audit entry in one script that
/// refuses it if the record changed meanwhile, then run the effects. Indexes outside the
/// study's slot (`studies:all`, `studies:state:*`, `studies:due`) are written around that
/// script so that a crash leaves the study due for the sweeper, which repairs them.
public struct StudyStore: Sendable {
    public let client: RedisClient
    public let prefix: KeyPrefix
    public let keys: GridKeys
    let logger: Logger
    /// What this store last saw of each study's audit chain (intake hashes entries itself).
    let chainHints = ChainHints()
    /// Seals instances at intake and opens sealed ones on reads; nil: intake stores them as
    /// given, and a sealed one read back is `blob.noKeys`.
    public let keyring: BlobKeyring?

    public init(client: RedisClient, prefix: KeyPrefix = .default, logger: Logger = Logger(label: "radgrid.studies"), keyring: BlobKeyring? = nil) {
        self.client = client
        self.prefix = prefix
        self.keys = GridKeys(prefix: prefix)
        self.logger = logger
        self.keyring = keyring
    }

    /// The study's own audit chain (its hash tag is the study's).
    public func audit(_ uid: StudyUID) -> AuditTrail { AuditTrail(client: client, prefix: prefix, chain: keys.study(uid).auditChain) }

    /// KEYS[1...4] of every study script: record, audit log, audit head, audit study index.
    func scriptKeys(_ uid: StudyUID) -> [RedisArgument] {
        [RedisArgument(keys.study(uid).record)] + audit(uid).scriptKeys(study: uid.rawValue).map { RedisArgument($0) }
    }

    static let storeInstanceScript = RedisScript(StudyStoreLua.storeInstance)
    static let applyScript = RedisScript(StudyStoreLua.apply)
    static let deleteBlobsScript = RedisScript(StudyStoreLua.deleteBlobs)
    static let blobHoldScript = RedisScript(StudyStoreLua.blobHold)
    static let expireScript = RedisScript(StudyStoreLua.expire)
    static let claimDueScript = RedisScript(StudyStoreLua.claimDue)

    // MARK: Intake

    public enum StoreOutcome: String, Sendable {
        /// A new instance of an open study.
        case stored
        /// The same SOP instance was already stored: nothing changed.
        case duplicate
        /// A new instance of a study already committed: stored, counted and flagged as late.
        case late
    }

    /// One instance as the intake hands it over: compressed, with its raw size and digest.
    public struct IncomingInstance: Sendable {
        public var header: InstanceHeader
        public var compressed: [UInt8]
        public var rawSize: Int
        public var sha256: String
        /// The StudyInstanceUID the site sent, when `header.study` is the key of the site's own
        /// copy of a UID another site holds (set by `storeInstances`).
        var dicomStudy: StudyUID?

        public init(header: InstanceHeader, compressed: [UInt8], rawSize: Int, sha256: String) {
            self.header = header
            self.compressed = compressed
            self.rawSize = rawSize
            self.sha256 = sha256
        }
    }

    /// Stores one compressed instance; resending the same SOP instance is a no-op. A UID
    /// another site holds is stored as this site's own copy (`resolve(site:study:)`).
    @discardableResult
    public func storeInstance(site: SiteID, header: InstanceHeader, priority: Priority, compressed: [UInt8], rawSize: Int, sha256: String,
                              stableAge: Int64 = LifecycleSettings().stableAge) async throws -> StoreOutcome {
        let item = IncomingInstance(header: header, compressed: compressed, rawSize: rawSize, sha256: sha256)
        return try await storeInstances(site: site, priority: priority, [item], stableAge: stableAge)[0].get()
    }

    /// Stores many instances (one upload) in one round trip: each instance's script is
    /// prepared as if the ones before it in the batch were stored, so the usual upload (new
    /// instances of one study) needs no other; an instance whose guess no longer holds (a
    /// duplicate before it, another writer) is stored again on its own. Each instance has its
    /// own result. Studies are the site's: a UID another site holds is stored under the site's
    /// own copy (`resolve(site:study:)`); `study.forbidden` only when another site took a new
    /// UID between that lookup and the store (the site's retry goes to its copy).
    /// `consent`: the site's consent reference for the upload, recorded with the study (`consent`
    /// field) when it has none yet.
    public func storeInstances(site: SiteID, priority: Priority, _ items: [IncomingInstance], consent: String? = nil,
                               stableAge: Int64 = LifecycleSettings().stableAge) async throws -> [Result<StoreOutcome, any Error>] {
        guard !items.isEmpty else { return [] }
        // (site, UID): each study of the upload under the key of this site's study.
        var keyOf: [StudyUID: StudyUID] = [:]
        for item in items where keyOf[item.header.study] == nil {
            keyOf[item.header.study] = try await resolve(site: site, study: item.header.study)
        }
        let keyed = items.map { item -> IncomingInstance in
            guard let key = keyOf[item.header.study], key != item.header.study else { return item }
            var copy = item
            copy.dicomStudy = item.header.study
            copy.header.study = key
            return copy
        }
        // Sealed once here, so a script redone below stores the same bytes (and the stored size is the sealed one).
        let items = try keyed.map { try sealed($0, site: site) }
        var results = [Result<StoreOutcome, any Error>?](repeating: nil, count: items.count)
        var states: [String?] = Array(repeating: nil, count: items.count)
        // Each study is due for the sweeper first (stable age), whatever happens next.
        var studies: [StudyUID] = []
        for item in items where !studies.contains(item.header.study) { studies.append(item.header.study) }
        let dueAt = RedisArgument(WallClock.nowMilliseconds() + stableAge)
        var commands = studies.map { RedisCommand("ZADD", RedisArgument(keys.dueStudies), "GT", dueAt, RedisArgument($0.rawValue)) }
        var predicted: [StudyUID: ChainHint] = [:]
        var hashes: [String] = []
        for item in items {
            let uid = item.header.study
            let hint = predicted[uid] ?? chainHints.hint(for: uid) ?? ChainHint(head: AuditTrail.genesisHash, exists: false, committed: false)
            let (command, hash) = storeCommand(site: site, priority: priority, item, hint: hint, consent: consent)
            commands.append(command)
            hashes.append(hash)
            predicted[uid] = ChainHint(head: hash, exists: true, committed: hint.committed)
        }
        let replies = try await client.pipeline(commands)
        for reply in replies.prefix(studies.count) { try reply.throwingServerError() }
        var again: [Int] = []
        for (index, reply) in replies.dropFirst(studies.count).enumerated() {
            let uid = items[index].header.study
            let fields: [RedisValue]
            do {
                fields = try reply.throwingServerError().array ?? []
            } catch {
                results[index] = .failure(error)
                continue
            }
            switch fields.first?.string {
            case "stored", "late":
                chainHints.remember(uid, ChainHint(head: hashes[index], exists: true, committed: fields.first?.string == "late"))
                results[index] = .success(fields.first?.string == "late" ? .late : .stored)
                states[index] = fields.count > 1 ? fields[1].string : nil
            case "duplicate": results[index] = .success(.duplicate)
            case "forbidden": results[index] = .failure(StudyStoreError(.forbidden, "study belongs to another site"))
            case "retry":
                // Another writer moved the chain, or a guess of this batch failed: learn and redo.
                chainHints.remember(uid, ChainHint(retryReply: fields))
                again.append(index)
            default: results[index] = .failure(StudyStoreError(.contended, "unexpected reply from the store-instance script"))
            }
        }
        for index in again {
            do {
                let (outcome, state) = try await storeAlone(site: site, priority: priority, items[index], consent: consent)
                results[index] = .success(outcome)
                states[index] = state
            } catch {
                results[index] = .failure(error)
            }
        }
        // Indexes outside the study's slot: idempotent, repaired by the sweeper if lost.
        var index: [RedisCommand] = []
        var indexed: Set<StudyUID> = []
        for (i, item) in items.enumerated() {
            guard case .success(let outcome) = results[i]!, outcome != .duplicate else { continue }
            let uid = item.header.study
            if indexed.insert(uid).inserted {
                let chain = audit(uid)
                index.append(RedisCommand("ZADD", RedisArgument(keys.allStudies), "NX", RedisArgument(WallClock.nowMilliseconds()), RedisArgument(uid.rawValue)))
                index.append(RedisCommand("SADD", RedisArgument(chain.chainsKey), RedisArgument(chain.chain)))
                if outcome == .stored, states[i] == StudyState.received.rawValue {
                    index.append(RedisCommand("SADD", RedisArgument(keys.studies(in: .received)), RedisArgument(uid.rawValue)))
                }
                if let state = states[i].flatMap(StudyState.init(rawValue:)), !state.isTerminal {
                    // HSETNX: a study's priority raised since intake stays raised.
                    index.append(RedisCommand("HSETNX", RedisArgument(keys.siteOpenStudies(site)), RedisArgument(uid.rawValue), RedisArgument(priority.rawValue)))
                }
            }
            if outcome == .late {
                // The coordinators record what a late instance means for the study.
                index.append(RedisCommand("XADD", RedisArgument(keys.committedStream), "MAXLEN", "~", "100000", "*",
                                          "study", RedisArgument(uid.rawValue), "late", RedisArgument(item.header.sop.rawValue)))
            }
        }
        if !index.isEmpty {
            for reply in try await client.pipeline(index) { try reply.throwingServerError() }
        }
        return results.map { $0! }
    }

    /// `item` with its compressed bytes sealed for `site` when this store has keys.
    private func sealed(_ item: IncomingInstance, site: SiteID) throws -> IncomingInstance {
        guard let keyring else { return item }
        var item = item
        item.compressed = try keyring.seal(item.compressed, site: site.rawValue, study: item.header.study.rawValue, sop: item.header.sop.rawValue)
        return item
    }

    /// The store-instance script for `item`, its audit entries hashed on the chain `hint`
    /// describes; returns the command and the hash of the instance's entry (the new head).
    private func storeCommand(site: SiteID, priority: Priority, _ item: IncomingInstance, hint: ChainHint, consent: String?) -> (RedisCommand, String) {
        let uid = item.header.study
        let study = keys.study(uid)
        let actor = "site:" + site.rawValue
        // The entries this instance adds, hashed here: `study.received` for a new study, then
        // `instance.stored` (or `instance.late` once committed).
        let ts = WallClock.nowMilliseconds()
        var previous = hint.head
        var receivedHash = ""
        if !hint.exists {
            receivedHash = AuditTrail.hash(previous: previous, timestampMilliseconds: ts, actor: actor, action: "study.received",
                                           study: uid.rawValue, details: "priority=\(priority.rawValue)")
            previous = receivedHash
        }
        let sop = item.header.sop
        let instanceHash = hint.committed
            ? AuditTrail.hash(previous: previous, timestampMilliseconds: ts, actor: actor, action: "instance.late", study: uid.rawValue, details: "sop=\(sop)")
            : AuditTrail.hash(previous: previous, timestampMilliseconds: ts, actor: actor, action: "instance.stored", study: uid.rawValue,
                              details: "sop=\(sop) bytes=\(item.rawSize)")
        let arguments: [RedisArgument] = [
            RedisArgument(site.rawValue), RedisArgument(sop.rawValue), RedisArgument(item.header.series.rawValue),
            RedisArgument(Self.clean(item.header.modality)), RedisArgument(Self.clean(item.header.bodyPart)), RedisArgument(priority.rawValue),
            RedisArgument(item.rawSize), RedisArgument(item.sha256), RedisArgument(item.compressed), RedisArgument(item.compressed.count),
            RedisArgument(hint.head), RedisArgument(ts), RedisArgument(receivedHash), RedisArgument(instanceHash), RedisArgument(hint.committed ? "1" : "0"),
            RedisArgument(consent ?? ""), RedisArgument(item.dicomStudy?.rawValue ?? ""),
        ]
        let command = RedisCommand.script(Self.storeInstanceScript, keys: scriptKeys(uid) + [RedisArgument(study.instances), RedisArgument(study.blob(sop))],
                                          arguments: arguments)
        return (command, instanceHash)
    }

    /// Stores one instance on its own, learning the chain's head until its script agrees;
    /// returns the outcome and the study's state.
    private func storeAlone(site: SiteID, priority: Priority, _ item: IncomingInstance, consent: String?) async throws -> (StoreOutcome, String?) {
        let uid = item.header.study
        var hint = chainHints.hint(for: uid) ?? ChainHint(head: AuditTrail.genesisHash, exists: false, committed: false)
        for attempt in 0..<8 {
            let (command, hash) = storeCommand(site: site, priority: priority, item, hint: hint, consent: consent)
            let fields = try await client.send(command).array ?? []
            switch fields.first?.string {
            case "stored", "late":
                let late = fields.first?.string == "late"
                chainHints.remember(uid, ChainHint(head: hash, exists: true, committed: late))
                return (late ? .late : .stored, fields.count > 1 ? fields[1].string : nil)
            case "duplicate": return (.duplicate, nil)
            case "forbidden": throw StudyStoreError(.forbidden, "study belongs to another site")
            case "retry":
                hint = ChainHint(retryReply: fields)
                chainHints.remember(uid, hint)
                if attempt > 3 { try await Task.sleep(for: .milliseconds(Int64(attempt))) }
            default: throw StudyStoreError(.contended, "unexpected reply from the store-instance script")
            }
        }
        throw StudyStoreError(.contended, "the study's audit chain kept moving while an instance was stored")
    }

    /// Marks an upload from `site` in progress (stable age waits for it); call `endUpload` after.
    public func beginUpload(site: SiteID) async throws {
        let key = RedisArgument(keys.siteUploads(site))
        _ = try await client.pipeline([RedisCommand("INCR", key), RedisCommand("EXPIRE", key, "60")])
    }

    /// Keeps a long upload marked (call every few seconds while receiving).
    public func touchUpload(site: SiteID) async throws {
        try await client.send("EXPIRE", RedisArgument(keys.siteUploads(site)), "60")
    }

    public func endUpload(site: SiteID) async throws {
        let key = RedisArgument(keys.siteUploads(site))
        let replies = try await client.pipeline([RedisCommand("DECR", key), RedisCommand("EXPIRE", key, "60")])
        if (replies[0].int ?? 0) <= 0 { try await client.send("DEL", key) }
    }

    public func isUploading(site: SiteID) async throws -> Bool {
        (Int(try await client.send("GET", RedisArgument(keys.siteUploads(site))).string ?? "0") ?? 0) > 0
    }

    // MARK: Reading

    public func record(_ uid: StudyUID) async throws -> StudyRecord? {
        try RecordCodec.decode(try await client.send("HGETALL", RedisArgument(keys.study(uid).record)).fieldMap ?? [:])
    }

    /// Several records in one pipeline, in the order asked (nil where a study is unknown).
    public func records(_ uids: [StudyUID]) async throws -> [StudyRecord?] {
        guard !uids.isEmpty else { return [] }
        let replies = try await client.pipeline(uids.map { RedisCommand("HGETALL", RedisArgument(keys.study($0).record)) })
        return try replies.map { try RecordCodec.decode(try $0.throwingServerError().fieldMap ?? [:]) }
    }

    /// The study's instances as indexed at intake, sorted by SOP Instance UID.
    public func instances(_ uid: StudyUID) async throws -> [InstanceEntry] {
        let map = try await client.send("HGETALL", RedisArgument(keys.study(uid).instances)).fieldMap ?? [:]
        return map.compactMap { name, value -> InstanceEntry? in
            guard let sop = try? SOPInstanceUID(name) else { return nil }
            let parts = (value.string ?? "").split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            return InstanceEntry(sop: sop, series: parts.count > 0 ? try? SeriesUID(parts[0]) : nil, bytes: parts.count > 1 ? Int64(parts[1]) ?? 0 : 0,
                                 sha256: parts.count > 2 ? parts[2] : "", modality: parts.count > 3 ? parts[3] : "")
        }.sorted { $0.sop < $1.sop }
    }

    /// SOP Instance UIDs of a study, sorted.
    public func instanceUIDs(_ uid: StudyUID) async throws -> [SOPInstanceUID] {
        (try await client.send("HKEYS", RedisArgument(keys.study(uid).instances)).array ?? []).compactMap { $0.string.flatMap { try? SOPInstanceUID($0) } }.sorted()
    }

    /// What an instance task needs, in one round trip: the study's state and generation and
    /// the instance's compressed bytes (nil when gone), opened when sealed.
    /// `damaged`: the blob is there but will never open (altered, or not its own: `blob.authentication`,
    /// `blob.malformed`), so the instance fails alone; missing keys still throw (another worker,
    /// or this one after a key file change, may open it).
    public func instanceWork(study uid: StudyUID, sop: SOPInstanceUID) async throws -> (state: StudyState?, generation: Int?, compressed: [UInt8]?, damaged: String?) {
        let study = keys.study(uid)
        let replies = try await client.pipeline([
            RedisCommand("HMGET", RedisArgument(study.record), "state", "gen", RedisArgument(RecordField.site)),
            RedisCommand("GET", RedisArgument(study.blob(sop))),
        ])
        let fields = try replies[0].throwingServerError().array ?? []
        let blob = try replies[1].throwingServerError()
        let state = fields.first?.string.flatMap(StudyState.init(rawValue:))
        let generation = fields.count > 1 ? fields[1].string.flatMap { Int($0) } : nil
        do {
            let compressed = try blob.isNull ? nil : blob.bytes.map { try unsealed($0, site: fields.count > 2 ? fields[2].string : nil, study: uid, sop: sop) }
            return (state, generation, compressed, nil)
        } catch let error as BlobSealingError where error.codeValue == .authentication || error.codeValue == .malformed {
            logger.warning("a sealed instance does not open", metadata: ["study": "\(uid)", "sop": "\(sop)", "code": "\(error.code)"])
            return (state, generation, nil, error.code)
        }
    }

    /// The compressed bytes of one instance (opened when sealed), or nil when absent (never
    /// stored, or deleted by retention).
    public func compressedInstance(study uid: StudyUID, sop: SOPInstanceUID) async throws -> [UInt8]? {
        let study = keys.study(uid)
        // The site comes with the blob: its data key and authenticated context name it.
        let replies = try await client.pipeline([
            RedisCommand("HGET", RedisArgument(study.record), RedisArgument(RecordField.site)),
            RedisCommand("GET", RedisArgument(study.blob(sop))),
        ])
        let site = try replies[0].throwingServerError().string
        let blob = try replies[1].throwingServerError()
        return try blob.isNull ? nil : blob.bytes.map { try unsealed($0, site: site, study: uid, sop: sop) }
    }

    /// A stored blob as readers want it: opened when sealed, as stored when it predates sealing.
    func unsealed(_ stored: [UInt8], site: String?, study: StudyUID, sop: SOPInstanceUID) throws -> [UInt8] {
        guard BlobKeyring.isSealed(stored) else { return stored }
        guard let keyring else {
            throw BlobSealingError(.noKeys, "the instance is sealed and this process has no blob keys (--blob-keys or RADGRID_BLOB_KEYS)")
        }
        guard let site, !site.isEmpty else { throw StudyStoreError(.unknown, "the sealed instance's study has no record to name its site") }
        return try keyring.open(stored, site: site, study: study.rawValue, sop: sop.rawValue)
    }

    /// What happened to each instance (written by the study task).
    public func outcomes(_ uid: StudyUID) async throws -> [SOPInstanceUID: InstanceOutcome] {
        let map = try await client.send("HGETALL", RedisArgument(keys.study(uid).outcomes)).fieldMap ?? [:]
        var out: [SOPInstanceUID: InstanceOutcome] = [:]
        for (name, value) in map {
            guard let sop = try? SOPInstanceUID(name), let text = value.string else { continue }
            out[sop] = InstanceOutcomeText.decode(text)
        }
        return out
    }

    /// Records every instance's outcome (idempotent).
    public func recordOutcomes(_ uid: StudyUID, _ outcomes: [(SOPInstanceUID, InstanceOutcome)]) async throws {
        guard !outcomes.isEmpty else { return }
        try await client.send(["HSET", RedisArgument(keys.study(uid).outcomes)] + outcomes.flatMap { [RedisArgument($0.0.rawValue), RedisArgument(InstanceOutcomeText.encode($0.1))] })
    }

    /// Stores worklist thumbnails (PNG) by series UID (idempotent).
    public func recordThumbnails(_ uid: StudyUID, _ thumbnails: [String: [UInt8]]) async throws {
        guard !thumbnails.isEmpty else { return }
        try await client.send(["HSET", RedisArgument(keys.study(uid).thumbnails)] + thumbnails.sorted { $0.key < $1.key }.flatMap { [RedisArgument($0.key), RedisArgument($0.value)] })
    }

    /// Worklist thumbnails (PNG) by series UID.
    public func thumbnails(_ uid: StudyUID) async throws -> [String: [UInt8]] {
        (try await client.send("HGETALL", RedisArgument(keys.study(uid).thumbnails)).fieldMap ?? [:]).compactMapValues(\.bytes)
    }

    /// Number of studies in each state.
    public func countsByState() async throws -> [StudyState: Int] {
        let replies = try await client.pipeline(StudyState.allCases.map { RedisCommand("SCARD", RedisArgument(keys.studies(in: $0))) })
        var counts: [StudyState: Int] = [:]
        for (state, reply) in zip(StudyState.allCases, replies) { counts[state] = Int(reply.int ?? 0) }
        return counts
    }

    /// Studies known to the grid, oldest first.
    public func allStudies(limit: Int = 10_000) async throws -> [StudyUID] {
        (try await client.send("ZRANGE", RedisArgument(keys.allStudies), "0", RedisArgument(limit - 1)).array ?? []).compactMap { $0.string.flatMap { try? StudyUID($0) } }
    }

    /// The study a router case belongs to.
    public func study(forCase id: CaseID) async throws -> StudyUID? {
        try await client.send("GET", RedisArgument(keys.caseStudy(id))).string.flatMap { try? StudyUID($0) }
    }

    // MARK: Validation

    /// Code strings from headers (modality, body part): trimmed, uppercase letters/digits/_ only.
    public static func clean(_ code: String) -> String {
        String(code.uppercased().unicodeScalars.filter { ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" }.prefix(16).map(Character.init))
    }
}

/// What a store last saw of one study's audit chain.
struct ChainHint: Sendable {
    var head: String
    var exists: Bool
    var committed: Bool

    init(head: String, exists: Bool, committed: Bool) {
        self.head = head
        self.exists = exists
        self.committed = committed
    }

    /// The facts of a store-instance `{'retry', head, exists, committed}` reply.
    init(retryReply fields: [RedisValue]) {
        self.init(head: fields.count > 1 ? fields[1].string ?? "" : "", exists: fields.count > 2 && fields[2].string == "1",
                  committed: fields.count > 3 && fields[3].string == "1")
    }
}

/// Chain hints by study, bounded (cleared when full: a miss costs one extra round trip).
final class ChainHints: Sendable {
    private let hints = Mutex<[StudyUID: ChainHint]>([:])

    func hint(for uid: StudyUID) -> ChainHint? { hints.withLock { $0[uid] } }

    func remember(_ uid: StudyUID, _ hint: ChainHint) {
        hints.withLock { map in
            if map.count >= 4096 { map.removeAll(keepingCapacity: true) }
            map[uid] = hint
        }
    }
}

/// How an instance outcome is stored: `image`, `nonimage:<kind>`, `failed:<code>`.
enum InstanceOutcomeText {
    static func encode(_ outcome: InstanceOutcome) -> String {
        switch outcome {
        case .image: "image"
        case .nonImage(let kind): "nonimage:" + kind
        case .failed(let code): "failed:" + code
        }
    }

    static func decode(_ text: String) -> InstanceOutcome {
        if text.hasPrefix("nonimage:") { return .nonImage(kind: String(text.dropFirst(9))) }
        if text.hasPrefix("failed:") { return .failed(code: String(text.dropFirst(7))) }
        return .image
    }
}
