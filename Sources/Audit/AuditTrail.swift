import Crypto
import Logging
import RadGridCore
import RedisClient

/// Who did something: the kind of actor and its id (a site code, worker id, expert id, ...).
public struct AuditActor: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case site, gateway, coordinator, worker, router, expert, qc, admin, system
    }

    public var kind: Kind
    public var id: String

    public init(_ kind: Kind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    /// `kind:id`, the form stored in entries.
    public var description: String { "\(kind.rawValue):\(id)" }

    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":"), let kind = Kind(rawValue: String(text[..<colon])) else { return nil }
        self.init(kind, String(text[text.index(after: colon)...]))
    }
}

/// One entry as stored: the chain fields plus Redis's stream id.
public struct AuditRecord: Sendable, Hashable, Codable {
    public var id: String
    public var timestampMilliseconds: Int64
    public var actor: String
    public var action: String
    public var study: String
    /// Free text or JSON without patient data (codes, ids, reasons).
    public var details: String
    public var previousHash: String
    public var hash: String
    /// Which chain the entry belongs to.
    public var chain: String
}

/// The result of walking every chain.
public struct AuditVerification: Sendable, Codable, Equatable {
    public struct Problem: Sendable, Codable, Equatable {
        public var chain: String
        public var entryID: String?
        public var reason: String
    }

    public var chains: Int
    public var entries: Int
    public var problems: [Problem]
    public var isIntact: Bool { problems.isEmpty }
}

/// An append-only, hash-chained audit log in Redis.
///
/// Entries live in one stream per *chain*; a chain is named by a Redis hash tag, so the
/// keys of a transition script (a queue's, the router's) and the chain it appends to sit in
/// one cluster slot and the script can write both atomically (`--#include _audit` in a
/// module's `.lua` file defines `rg_audit_append`; pass `scriptKeys(study:)` in its KEYS).
/// Each entry stores the previous entry's hash and its own:
/// `sha256(prev \n ts \n actor \n action \n study \n details)`; the head key holds the last
/// hash. An edited entry breaks its own hash, an inserted or deleted one breaks the links,
/// and a deleted tail no longer matches the head.
public struct AuditTrail: Sendable {
    public static let genesisHash = String(repeating: "0", count: 64)

    public let client: RedisClient
    public let prefix: KeyPrefix
    /// The chain this handle appends to; it is also the hash tag of its keys (e.g. `router`,
    /// `q:tasks`, `s:<study uid>`), so it must not contain braces.
    public let chain: String

    public init(client: RedisClient, prefix: KeyPrefix = .default, chain: String) {
        precondition(!chain.isEmpty && !chain.contains("{") && !chain.contains("}"), "audit chain names are hash tags")
        self.client = client
        self.prefix = prefix
        self.chain = chain
    }

    // MARK: Keys

    /// `rg:{<chain>}:audit:log` — the stream. The chain name is the hash tag, so a script
    /// over `rg:{<chain>}:...` keys can append to its chain atomically.
    public var logKey: String { "\(prefix.value){\(chain)}:audit:log" }
    /// `rg:{<chain>}:audit:head` — the last hash.
    public var headKey: String { "\(prefix.value){\(chain)}:audit:head" }
    /// `rg:{<chain>}:audit:study:<uid>` — ZSET of entry ids by time, for study timelines.
    public func studyKey(_ study: String) -> String { "\(prefix.value){\(chain)}:audit:study:\(study)" }
    /// Registry of chains, so `verify` and timelines find them: service chains (router,
    /// queues, ...) in one set, per-study chains (`s:<uid>`) in another, so a timeline reads
    /// the few service chains plus one study chain rather than every study's.
    public var chainsKey: String { Self.registryKey(prefix: prefix, studyChain: chain.hasPrefix(Self.studyChainPrefix)) }
    public static let studyChainPrefix = "s:"

    static func registryKey(prefix: KeyPrefix, studyChain: Bool) -> String {
        prefix.value + (studyChain ? "audit:chains:study" : "audit:chains")
    }

    /// The three KEYS `rg_audit_append` needs, in order.
    /// Without a study the third key is still one of the chain's (never written: the script
    /// skips the index when the study is empty), so every key is in the chain's slot and
    /// names a key the caller's ACL user may touch.
    public func scriptKeys(study: String) -> [String] { [logKey, headKey, studyKey(study)] }

    // MARK: Writing

    /// Appends one entry; returns its stream id. `details` must not contain patient data.
    @discardableResult
    public func append(actor: AuditActor, action: String, study: String = "", details: String = "") async throws -> String {
        try Self.validate(action: action, study: study)
        let keys = scriptKeys(study: study).map { RedisArgument($0) }
        let replies = try await client.pipeline([
            RedisCommand("SADD", RedisArgument(chainsKey), RedisArgument(chain)),
            .script(Self.appendScript, keys: keys, arguments: [RedisArgument(actor.description), RedisArgument(action), RedisArgument(study), RedisArgument(details)]),
        ])
        guard let id = try replies[1].throwingServerError().string else {
            throw RadGridError(code: "audit.unexpectedReply", message: "audit append returned no entry id")
        }
        return id
    }

    /// Registers this chain for `verify`/timelines (scripts that embed the prelude call this once at start-up).
    public func register() async throws {
        try await client.send("SADD", RedisArgument(chainsKey), RedisArgument(chain))
    }

    static let appendScript = RedisScript(AuditLua.append)

    static func validate(action: String, study: String) throws {
        guard !action.isEmpty, !action.contains("\n") else {
            throw RadGridError(code: "audit.invalidEntry", message: "audit action must be a non-empty single line")
        }
        guard !study.contains("\n") else {
            throw RadGridError(code: "audit.invalidEntry", message: "study id must be a single line")
        }
    }

    // MARK: Reading

    /// Every entry of this chain in order, read in pages.
    public func entries(pageSize: Int = 1000) async throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        var start = "-"
        while true {
            let page = try await client.send("XRANGE", RedisArgument(logKey), RedisArgument(start), "+", "COUNT", RedisArgument(pageSize))
            guard let items = page.array else { break }
            for item in items {
                guard let record = Self.record(item, chain: chain) else {
                    throw RadGridError(code: "audit.malformedEntry", message: "entry in chain '\(chain)' is not an audit entry")
                }
                records.append(record)
            }
            guard items.count == pageSize, let last = records.last else { break }
            start = "(" + last.id
        }
        return records
    }

    /// A study's entries from every chain, in time order.
    public static func timeline(client: RedisClient, prefix: KeyPrefix = .default, study: String) async throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        let service = (try await client.send("SMEMBERS", RedisArgument(registryKey(prefix: prefix, studyChain: false))).array ?? []).compactMap(\.string)
        for chain in service.sorted() + [studyChainPrefix + study] {
            let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
            let ids = try await client.send("ZRANGE", RedisArgument(trail.studyKey(study)), "0", "-1").array ?? []
            guard !ids.isEmpty else { continue }
            let commands = ids.compactMap(\.string).map { RedisCommand("XRANGE", RedisArgument(trail.logKey), RedisArgument($0), RedisArgument($0)) }
            for reply in try await client.pipeline(commands) {
                // An id whose entry is gone is itself evidence of tampering; verify reports it.
                if let item = reply.array?.first, let record = record(item, chain: chain) { records.append(record) }
            }
        }
        return records.sorted { ($0.timestampMilliseconds, $0.chain, $0.id) < ($1.timestampMilliseconds, $1.chain, $1.id) }
    }

    /// Every registered chain: service chains, then study chains.
    public static func chains(client: RedisClient, prefix: KeyPrefix = .default) async throws -> [String] {
        let replies = try await client.pipeline([false, true].map { RedisCommand("SMEMBERS", RedisArgument(registryKey(prefix: prefix, studyChain: $0))) })
        return replies.flatMap { ($0.array ?? []).compactMap(\.string).sorted() }
    }

    // MARK: Verifying

    /// Recomputes every hash of every chain and checks each link and each head.
    public static func verify(client: RedisClient, prefix: KeyPrefix = .default) async throws -> AuditVerification {
        var verification = AuditVerification(chains: 0, entries: 0, problems: [])
        for chain in try await chains(client: client, prefix: prefix) {
            let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
            verification.chains += 1
            // A live grid appends while this reads: when the head has moved past the entries
            // just read, read again (an append writes its entry and the head in one script, so a
            // real mismatch persists). An archive run may trim the stream meanwhile: read again
            // when the archive anchor moved during the read.
            var anchor: AuditArchiveAnchor?
            var records: [AuditRecord] = []
            var head = genesisHash
            for _ in 0..<4 {
                anchor = try await trail.archiveAnchor()
                records = try await trail.entries()
                head = try await client.send("GET", RedisArgument(trail.headKey)).string ?? genesisHash
                if try await trail.archiveAnchor() == anchor, head == (records.last?.hash ?? anchor?.hash ?? genesisHash) { break }
            }
            verification.entries += records.count
            // Entries moved to an archive leave an anchor: the live stream continues from it.
            var expectedPrevious = anchor?.hash ?? genesisHash
            for record in records {
                if record.previousHash != expectedPrevious {
                    verification.problems.append(.init(chain: chain, entryID: record.id, reason: "link broken: an entry before this one was deleted, inserted or edited"))
                }
                if hash(record) != record.hash {
                    verification.problems.append(.init(chain: chain, entryID: record.id, reason: "content does not match its hash: the entry was edited"))
                }
                expectedPrevious = record.hash
            }
            if head != expectedPrevious {
                verification.problems.append(.init(chain: chain, entryID: records.last?.id, reason: "head does not match the last entry: entries at the end were deleted or the head was changed"))
            }
        }
        return verification
    }

    /// The chain hash of an entry, as the Lua prelude computes it.
    public static func hash(_ record: AuditRecord) -> String {
        hash(previous: record.previousHash, timestampMilliseconds: record.timestampMilliseconds, actor: record.actor,
             action: record.action, study: record.study, details: record.details)
    }

    /// The chain hash of an entry from its fields (scripts on hot paths take it precomputed).
    public static func hash(previous: String, timestampMilliseconds: Int64, actor: String, action: String, study: String, details: String) -> String {
        let message = [previous, String(timestampMilliseconds), actor, action, study, details].joined(separator: "\n")
        return SHA256.hash(data: Array(message.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static func record(_ item: RedisValue, chain: String) -> AuditRecord? {
        guard let pair = item.array, pair.count == 2, let id = pair[0].string, let fields = pair[1].fieldMap,
              let ts = fields["ts"]?.int, let actor = fields["actor"]?.string, let action = fields["action"]?.string,
              let previous = fields["prev"]?.string, let hash = fields["hash"]?.string else { return nil }
        return AuditRecord(id: id, timestampMilliseconds: ts, actor: actor, action: action,
                           study: fields["study"]?.string ?? "", details: fields["details"]?.string ?? "",
                           previousHash: previous, hash: hash, chain: chain)
    }
}
