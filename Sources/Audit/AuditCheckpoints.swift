import Crypto
import Foundation
import RadGridCore
import Logging
import RedisClient
import ServiceLifecycle

/// Signed checkpoints of the audit chains, kept outside Redis, so that a chain deleted,
/// truncated or recomputed in Redis (together with its head) no longer verifies.
///
/// A checkpoint is one JSON line in an append-only file of `DIR` (`checkpoints-YYYYMMDD.jsonl`,
/// mode 0600): a sequence number, the time, the hash of the previous line, and for every chain
/// that changed since the previous checkpoint its length, last entry id and that entry's hash;
/// signed with Ed25519. Replaying the lines gives the last signed state of every chain ever
/// checkpointed. `verify` then requires each such chain to still hold that entry with that hash.
public struct AuditCheckpoint: Sendable, Codable, Equatable {
    public struct ChainState: Sendable, Codable, Equatable {
        public var length: Int
        public var lastID: String
        public var hash: String
        enum CodingKeys: String, CodingKey { case length, lastID = "last_id", hash }
    }

    public var sequence: Int
    public var timeMilliseconds: Int64
    public var prefix: String
    /// SHA-256 of the previous checkpoint's line (64 zeros for the first).
    public var previous: String
    /// Chains that changed since the previous checkpoint.
    public var chains: [String: ChainState]
    /// Ed25519 over `signedText`, base64.
    public var signature: String

    enum CodingKeys: String, CodingKey { case sequence, timeMilliseconds = "time_ms", prefix, previous, chains, signature }

    /// What is signed: every field but the signature, one per line, chains sorted by name.
    public var signedText: String {
        var lines = ["radgrid-audit-checkpoint 1", String(sequence), String(timeMilliseconds), prefix, previous]
        for name in chains.keys.sorted() {
            let state = chains[name]!
            lines.append("\(name) \(state.length) \(state.lastID) \(state.hash)")
        }
        return lines.joined(separator: "\n")
    }
}

/// The Ed25519 key pair of the checkpoints: the private key in a 0600 file (base64 of the raw
/// 32 bytes), the public key beside it (`checkpoint.pub`, the same form) for anyone who verifies.
public struct CheckpointKey: Sendable {
    /// The raw private key (swift-crypto's key type is not `Sendable`; it is rebuilt to sign).
    private let raw: Data

    init(privateKey: Curve25519.Signing.PrivateKey) { raw = privateKey.rawRepresentation }

    public func sign(_ text: String) throws -> String {
        try Curve25519.Signing.PrivateKey(rawRepresentation: raw).signature(for: Data(text.utf8)).base64EncodedString()
    }

    public var publicKey: Curve25519.Signing.PublicKey {
        // The raw bytes came from a valid key.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: raw).publicKey
    }

    /// Loads the key, or creates it (and writes the public key) when the file does not exist.
    public static func loadOrCreate(privateKeyPath: String, publicKeyPath: String) throws -> CheckpointKey {
        if let text = Files.read(privateKeyPath) {
            guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
                throw RadGridError(code: "audit.checkpointKey", message: "the checkpoint key file is not a base64 Ed25519 private key")
            }
            try Files.write(publicKeyPath, key.publicKey.rawRepresentation.base64EncodedString() + "\n", mode: 0o644)
            return CheckpointKey(privateKey: key)
        }
        let key = Curve25519.Signing.PrivateKey()
        try Files.write(privateKeyPath, key.rawRepresentation.base64EncodedString() + "\n", mode: 0o600)
        try Files.write(publicKeyPath, key.publicKey.rawRepresentation.base64EncodedString() + "\n", mode: 0o644)
        return CheckpointKey(privateKey: key)
    }

    public static func publicKey(path: String) throws -> Curve25519.Signing.PublicKey {
        guard let text = Files.read(path), let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw RadGridError(code: "audit.checkpointKey", message: "\(path) is not a base64 Ed25519 public key")
        }
        return key
    }
}

public enum AuditCheckpoints {
    static let script = RedisScript(AuditLua.checkpoint)

    /// The signed state replayed from a checkpoint directory.
    public struct Replay: Sendable {
        public var chains: [String: (sequence: Int, state: AuditCheckpoint.ChainState)] = [:]
        public var lastSequence = 0
        public var lastLineHash = AuditTrail.genesisHash
        public var checkpoints = 0
        public var problems: [AuditVerification.Problem] = []
    }

    /// Reads every checkpoint in `directory` in order, checking signatures (when a key is
    /// given), the sequence and the links between lines.
    public static func replay(directory: String, publicKey: Curve25519.Signing.PublicKey?) -> Replay {
        var replay = Replay()
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("checkpoints-") && $0.hasSuffix(".jsonl") }.sorted()
        let decoder = JSONDecoder()
        for name in names {
            let text = Files.read("\(directory)/\(name)") ?? ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                func problem(_ reason: String) { replay.problems.append(.init(chain: "checkpoints", entryID: "\(name)#\(replay.lastSequence + 1)", reason: reason)) }
                guard let checkpoint = try? decoder.decode(AuditCheckpoint.self, from: Data(line.utf8)) else {
                    problem("a checkpoint line cannot be read")
                    continue
                }
                if let publicKey {
                    let signature = Data(base64Encoded: checkpoint.signature) ?? Data()
                    if !publicKey.isValidSignature(signature, for: Data(checkpoint.signedText.utf8)) {
                        problem("checkpoint \(checkpoint.sequence) does not carry a valid signature: it was edited or signed by another key")
                    }
                }
                if checkpoint.sequence != replay.lastSequence + 1 {
                    problem("checkpoint \(checkpoint.sequence) follows \(replay.lastSequence): checkpoints were removed")
                }
                if checkpoint.previous != replay.lastLineHash {
                    problem("checkpoint \(checkpoint.sequence) does not link to the one before it")
                }
                for (chain, state) in checkpoint.chains { replay.chains[chain] = (checkpoint.sequence, state) }
                replay.lastSequence = checkpoint.sequence
                replay.lastLineHash = hex(SHA256.hash(data: Array(line.utf8)))
                replay.checkpoints += 1
            }
        }
        return replay
    }

    /// Every registered chain's current state, read one script per chain (pipelined).
    static func currentStates(client: RedisClient, prefix: KeyPrefix) async throws -> [String: (state: AuditCheckpoint.ChainState, head: String)] {
        let chains = try await AuditTrail.chains(client: client, prefix: prefix)
        var states: [String: (AuditCheckpoint.ChainState, String)] = [:]
        var start = 0
        while start < chains.count {
            let slice = Array(chains[start..<min(chains.count, start + 512)])
            let commands = slice.map { chain -> RedisCommand in
                let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
                return .script(script, keys: [RedisArgument(trail.logKey), RedisArgument(trail.headKey), RedisArgument(trail.archiveKey)], arguments: [])
            }
            for (chain, reply) in zip(slice, try await client.pipeline(commands)) {
                let values = try reply.throwingServerError().array ?? []
                guard values.count == 4 else { throw RadGridError(code: "audit.unexpectedReply", message: "checkpoint script returned \(values.count) values") }
                states[chain] = (AuditCheckpoint.ChainState(length: Int(values[0].int ?? 0), lastID: values[1].string ?? "", hash: values[2].string ?? ""), values[3].string ?? "")
            }
            start += 512
        }
        return states
    }

    /// Writes one checkpoint now: the chains that changed since the last one. Holds an
    /// exclusive lock on the directory while it reads the last line and appends the new one,
    /// so a daemon and `radgridctl audit checkpoint` never fork the sequence.
    @discardableResult
    public static func write(client: RedisClient, prefix: KeyPrefix, directory: String, key: CheckpointKey,
                             now: Date = Date()) async throws -> AuditCheckpoint {
        try Files.makeDirectories(directory, mode: 0o700)
        let lock = try await DirectoryLock.acquire(directory)
        defer { lock.release() }
        let replay = replay(directory: directory, publicKey: nil)
        var changed: [String: AuditCheckpoint.ChainState] = [:]
        for (chain, current) in try await currentStates(client: client, prefix: prefix) {
            guard !current.state.lastID.isEmpty else { continue }
            if let known = replay.chains[chain]?.state, known.lastID == current.state.lastID, known.hash == current.state.hash { continue }
            changed[chain] = current.state
        }
        var checkpoint = AuditCheckpoint(sequence: replay.lastSequence + 1, timeMilliseconds: Int64(now.timeIntervalSince1970 * 1000), prefix: prefix.value,
                                         previous: replay.lastLineHash, chains: changed, signature: "")
        checkpoint.signature = try key.sign(checkpoint.signedText)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = String(decoding: try encoder.encode(checkpoint), as: UTF8.self) + "\n"
        let day = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withYear, .withMonth, .withDay])
        try Files.append("\(directory)/checkpoints-\(day).jsonl", line, mode: 0o600)
        return checkpoint
    }

    /// Checks Redis against the signed checkpoints: every chain ever checkpointed must still be
    /// registered and still hold its checkpointed entry with the same hash, live or, once
    /// archived, in the audit archive at `archive` (lengths count archived entries).
    public static func verify(client: RedisClient, prefix: KeyPrefix, directory: String,
                              publicKey: Curve25519.Signing.PublicKey, archive: String? = nil) async throws -> (checkpoints: Int, problems: [AuditVerification.Problem]) {
        let replay = replay(directory: directory, publicKey: publicKey)
        var problems = replay.problems
        if replay.checkpoints == 0 {
            problems.append(.init(chain: "checkpoints", entryID: nil, reason: "no checkpoint found in \(directory)"))
        }
        let current = try await currentStates(client: client, prefix: prefix)
        for (chain, (sequence, signed)) in replay.chains.sorted(by: { $0.key < $1.key }) {
            guard let now = current[chain] else {
                problems.append(.init(chain: chain, entryID: signed.lastID, reason: "the chain is gone (checkpoint \(sequence) signed \(signed.length) entries)"))
                continue
            }
            if now.state.length == 0 {
                problems.append(.init(chain: chain, entryID: signed.lastID, reason: "the chain is empty (checkpoint \(sequence) signed \(signed.length) entries)"))
                continue
            }
            let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
            let reply = try await client.send("XRANGE", RedisArgument(trail.logKey), RedisArgument(signed.lastID), RedisArgument(signed.lastID))
            var found = reply.array?.first.flatMap { AuditTrail.record($0, chain: chain) }
            if found == nil, let archive { found = AuditArchive.record(directory: archive, chain: chain, id: signed.lastID) }
            guard let record = found else {
                // Without the archive an archived entry cannot be checked, and an anchor alone is no proof.
                if archive == nil, let anchor = try await trail.archiveAnchor(), !AuditArchive.isAfter(signed.lastID, anchor.id) {
                    problems.append(.init(chain: chain, entryID: signed.lastID, reason: "the entry signed in checkpoint \(sequence) was archived: verify with the archive directory"))
                } else {
                    problems.append(.init(chain: chain, entryID: signed.lastID, reason: "the entry signed in checkpoint \(sequence) is gone: the chain was truncated or rebuilt"))
                }
                continue
            }
            if record.hash != signed.hash {
                problems.append(.init(chain: chain, entryID: signed.lastID, reason: "the entry's hash differs from checkpoint \(sequence): the chain was recomputed"))
            }
            if now.state.length < signed.length {
                problems.append(.init(chain: chain, entryID: signed.lastID, reason: "the chain holds \(now.state.length) entries, fewer than the \(signed.length) signed in checkpoint \(sequence)"))
            }
            if now.head.isEmpty {
                problems.append(.init(chain: chain, entryID: nil, reason: "the chain's head is missing"))
            }
        }
        return (replay.checkpoints, problems)
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// An exclusive `flock` on a directory's `.lock` file, taken without blocking a thread
/// (retried with a short sleep).
struct DirectoryLock {
    let fd: Int32

    static func acquire(_ directory: String, timeout: Duration = .seconds(30)) async throws -> DirectoryLock {
        let fd = open("\(directory)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RadGridError(code: "audit.checkpointDirectory", message: "cannot open the lock file in \(directory)") }
        let deadline = ContinuousClock.now + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < deadline else {
                close(fd)
                throw RadGridError(code: "audit.checkpointBusy", message: "another process holds the checkpoint directory's lock")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return DirectoryLock(fd: fd)
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Writes a signed checkpoint at start and then every `interval` (`radgrid auditor`).
public struct AuditCheckpointer: Service {
    let client: RedisClient
    let prefix: KeyPrefix
    let directory: String
    let key: CheckpointKey
    let interval: Duration
    let logger: Logger

    public init(client: RedisClient, prefix: KeyPrefix, directory: String, key: CheckpointKey, interval: Duration, logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.directory = directory
        self.key = key
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await checkpoint()
                try? await Task.sleep(for: interval)
            }
        }
        // One more on the way out, so the last entries before a stop are covered.
        await checkpoint()
    }

    func checkpoint() async {
        do {
            let checkpoint = try await AuditCheckpoints.write(client: client, prefix: prefix, directory: directory, key: key)
            logger.info("audit checkpoint written", metadata: ["sequence": "\(checkpoint.sequence)", "chains": "\(checkpoint.chains.count)"])
        } catch {
            logger.error("cannot write an audit checkpoint", metadata: ["error": "\(error)"])
        }
    }
}
