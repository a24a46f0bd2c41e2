#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import RadGridCore
import Synchronization

/// The master keys that seal instance blobs at rest (AES-256-GCM), loaded from a key file
/// kept outside Redis.
///
/// **Per-site keys.** A blob is never sealed under a master key itself: each site's data key is
/// HKDF-SHA256(master key, salt `radgrid-blob-v1`, info: the site code), 32 bytes. Every site's
/// blobs are thus under their own key, yet nothing lists the sites: a new site needs no new
/// key and the file holds only the masters.
///
/// **Format.** `RGB1` · key-id length (1 byte) · key id · nonce (12 random bytes) · ciphertext ·
/// tag (16 bytes). The additional authenticated data is `site \n study \n sop`, so a blob
/// copied under another instance, study or site does not open.
///
/// **Rotation.** `rotate(file:)` adds a key and makes it current; old ids stay, so older blobs
/// still open. A keyring loaded from a file re-reads it when it changed (looked at no more
/// often than `checkInterval`, and at once when a blob names an id it does not know), so
/// running processes pick a rotation up without a restart. A file that no longer loads keeps
/// the keys in use and is reported by `reloadProblem`.
///
/// Key bytes are kept as plain arrays (swift-crypto's key types are not `Sendable`); the keys
/// are built per call.
public final class BlobKeyring: Sendable {
    /// Where processes find the key file when `--blob-keys` is not given.
    public static let environmentVariable = "RADGRID_BLOB_KEYS"
    static let magic: [UInt8] = Array("RGB1".utf8)
    static let salt: [UInt8] = Array("radgrid-blob-v1".utf8)
    static let nonceSize = 12
    static let tagSize = 16

    /// The file this keyring follows; nil for keys given in memory.
    public let path: String?
    let checkInterval: UInt64
    private let state: Mutex<State>

    struct State: Sendable {
        var keys: BlobKeySet
        var stamp: FileStamp?
        var checkedAt: UInt64
        var problem: BlobSealingError?
    }

    init(path: String?, keys: BlobKeySet, stamp: FileStamp?, checkInterval: Duration) {
        self.path = path
        let (seconds, attoseconds) = checkInterval.components
        self.checkInterval = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        self.state = Mutex(State(keys: keys, stamp: stamp, checkedAt: WallClock.monotonicNanoseconds(), problem: nil))
    }

    /// Keys held in memory only (tests, tools): `current` seals, every id opens.
    public convenience init(current: String, keys: [String: [UInt8]]) throws {
        self.init(path: nil, keys: try BlobKeySet(current: current, keys: keys), stamp: nil, checkInterval: .zero)
    }

    /// Loads a key file. Refused (`keys.permissions`) when group or others may read or write
    /// it; `keys.unreadable`, `keys.malformed`, `keys.noCurrent` otherwise.
    public static func load(path: String, checkInterval: Duration = .seconds(2)) throws -> BlobKeyring {
        let (keys, stamp) = try BlobKeySet.read(path: path)
        return BlobKeyring(path: path, keys: keys, stamp: stamp, checkInterval: checkInterval)
    }

    /// The keyring a process was configured with: `option` (`--blob-keys`), else
    /// `RADGRID_BLOB_KEYS`, else none (blobs stay unencrypted).
    public static func configured(option: String?, environment: [String: String] = ProcessEnvironment.current) throws -> BlobKeyring? {
        let path = option.flatMap { $0.isEmpty ? nil : $0 } ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        return try path.map { try load(path: $0) }
    }

    // MARK: The key file

    /// Creates a key file with one fresh random key (mode 0600; written under a temporary name,
    /// synced, then linked into place, so an existing file is never replaced: `keys.exists`).
    @discardableResult
    public static func createFile(at path: String, keyID: String = "k1") throws -> BlobKeyring {
        try BlobKeySet.validate(id: keyID)
        let keys = try BlobKeySet(current: keyID, keys: [keyID: BlobKeySet.randomKey()])
        try keys.write(to: path, replace: false)
        return try load(path: path)
    }

    /// Creates the file unless it exists; true when it was created.
    @discardableResult
    public static func createFileIfMissing(at path: String) throws -> Bool {
        if access(path, F_OK) == 0 { return false }
        do {
            try createFile(at: path)
            return true
        } catch let error as BlobSealingError where error.codeValue == .exists {
            return false
        }
    }

    /// Adds a fresh key (`newKeyID`, else `k<N+1>`) and makes it current; every old key stays.
    /// Returns the new id. The file is replaced atomically (temporary name, sync, rename).
    @discardableResult
    public static func rotate(file path: String, newKeyID: String? = nil) throws -> String {
        var (keys, _) = try BlobKeySet.read(path: path)
        let id = newKeyID ?? BlobKeySet.nextID(after: keys.keys.keys)
        try BlobKeySet.validate(id: id)
        guard keys.keys[id] == nil else { throw BlobSealingError(.exists, "key id \(id) is already in \(path)") }
        keys.keys[id] = BlobKeySet.randomKey()
        keys.current = id
        try keys.write(to: path, replace: true)
        return id
    }

    /// The id new seals use.
    public var currentKeyID: String { keys().current }
    /// Every id this keyring can open, sorted.
    public var keyIDs: [String] { keys().keys.keys.sorted() }
    /// Why the file's latest version was not taken (the keys before it stay in use).
    public var reloadProblem: BlobSealingError? { state.withLock { $0.problem } }

    /// The keys to use now, re-reading the file when it changed. `force` skips the interval.
    func keys(force: Bool = false) -> BlobKeySet {
        guard let path else { return state.withLock { $0.keys } }
        let now = WallClock.monotonicNanoseconds()
        let (due, known): (Bool, FileStamp?) = state.withLock { state in
            guard force || now &- state.checkedAt >= checkInterval else { return (false, nil) }
            state.checkedAt = now
            return (true, state.stamp)
        }
        guard due else { return state.withLock { $0.keys } }
        // Reading happens outside the lock; a stat of an unchanged file is all it costs.
        guard let stamp = FileStamp.of(path: path), stamp != known else { return state.withLock { $0.keys } }
        do {
            let (fresh, freshStamp) = try BlobKeySet.read(path: path)
            return state.withLock { state in
                state.keys = fresh
                state.stamp = freshStamp
                state.problem = nil
                return fresh
            }
        } catch {
            return state.withLock { state in
                // Remember the broken version so it is not re-read until it changes again.
                state.stamp = stamp
                state.problem = error as? BlobSealingError ?? BlobSealingError(.unreadable, "cannot reload \(path)")
                return state.keys
            }
        }
    }

    // MARK: Sealing

    /// True when `blob` is in the sealed format (its first four bytes are `RGB1`; zstd frames,
    /// which unsealed blobs are, start otherwise).
    public static func isSealed(_ blob: [UInt8]) -> Bool {
        blob.count >= magic.count && blob[0..<magic.count].elementsEqual(magic)
    }

    /// Seals `plaintext` under the current key's data key for `site`.
    public func seal(_ plaintext: [UInt8], site: String, study: String, sop: String) throws -> [UInt8] {
        let set = self.keys()
        guard let master = set.keys[set.current] else { throw BlobSealingError(.noCurrent, "the current key id \(set.current) has no key") }
        let id = Array(set.current.utf8)
        let box = try AES.GCM.seal(plaintext, using: Self.dataKey(master, site: site), nonce: AES.GCM.Nonce(),
                                   authenticating: Self.context(site: site, study: study, sop: sop))
        var out: [UInt8] = []
        out.reserveCapacity(Self.magic.count + 1 + id.count + Self.nonceSize + plaintext.count + Self.tagSize)
        out += Self.magic
        out.append(UInt8(id.count))
        out += id
        box.nonce.withUnsafeBytes { out += $0 }
        out += box.ciphertext
        out += box.tag
        return out
    }

    /// Opens a sealed blob: `blob.malformed` when it is not one, `blob.unknownKey` when its key
    /// id is not held, `blob.authentication` when it was altered or belongs elsewhere.
    public func open(_ blob: [UInt8], site: String, study: String, sop: String) throws -> [UInt8] {
        guard Self.isSealed(blob) else { throw BlobSealingError(.malformed, "the blob is not sealed (no RGB1 header)") }
        guard blob.count > Self.magic.count else { throw BlobSealingError(.malformed, "the sealed blob ends after its magic") }
        let idLength = Int(blob[Self.magic.count])
        let idStart = Self.magic.count + 1
        let nonceStart = idStart + idLength
        let bodyStart = nonceStart + Self.nonceSize
        guard idLength > 0, blob.count >= bodyStart + Self.tagSize else {
            throw BlobSealingError(.malformed, "the sealed blob is too short (\(blob.count) bytes) for its header")
        }
        let id = String(decoding: blob[idStart..<nonceStart], as: UTF8.self)
        var master = keys().keys[id]
        if master == nil {
            // Another process may have rotated since this one last looked: look again now.
            master = keys(force: true).keys[id]
        }
        guard let master else {
            let safeID = (try? BlobKeySet.validate(id: id)) != nil ? id : "(not a valid id)"
            let problem = reloadProblem.map { "; the key file did not reload: \($0.code)" } ?? ""
            throw BlobSealingError(.unknownKey, "the blob is sealed under key id \(safeID), which the keyring does not hold\(problem)")
        }
        let tagStart = blob.count - Self.tagSize
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: blob[nonceStart..<bodyStart]),
                                            ciphertext: blob[bodyStart..<tagStart], tag: blob[tagStart...])
            return Array(try AES.GCM.open(box, using: Self.dataKey(master, site: site), authenticating: Self.context(site: site, study: study, sop: sop)))
        } catch {
            throw BlobSealingError(.authentication, "the sealed blob did not verify (altered, or not this site's, study's or instance's)")
        }
    }

    /// The site's data key under one master (see the type's notes).
    static func dataKey(_ master: [UInt8], site: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: master), salt: salt, info: Array(site.utf8), outputByteCount: 32)
    }

    static func context(site: String, study: String, sop: String) -> [UInt8] {
        Array((site + "\n" + study + "\n" + sop).utf8)
    }
}
