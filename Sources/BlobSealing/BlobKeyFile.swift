#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation

/// One version of the key file: the id new seals use and every master key by id.
///
/// On disk: `{"current": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}`, mode 0600.
/// Old ids stay so blobs sealed under them stay readable.
struct BlobKeySet: Sendable, Equatable {
    static let keySize = 32

    var current: String
    var keys: [String: [UInt8]]

    init(current: String, keys: [String: [UInt8]]) throws {
        for (id, key) in keys {
            try Self.validate(id: id)
            guard key.count == Self.keySize else {
                throw BlobSealingError(.malformedFile, "key \(id) is \(key.count) bytes, not \(Self.keySize)")
            }
        }
        guard keys[current] != nil else { throw BlobSealingError(.noCurrent, "the current key id \(current) has no key") }
        self.current = current
        self.keys = keys
    }

    /// Key ids travel in every sealed blob's header (one length byte) and in log lines.
    static func validate(id: String) throws {
        let allowed = id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
        guard (1...64).contains(id.utf8.count), allowed else {
            throw BlobSealingError(.invalidID, "a key id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
        }
    }

    static func randomKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    /// `k<N+1>` after the largest `k<N>` already there.
    static func nextID(after ids: some Sequence<String>) -> String {
        "k" + String((ids.compactMap { $0.hasPrefix("k") ? Int($0.dropFirst()) : nil }.max() ?? 0) + 1)
    }

    // MARK: The file

    private struct Stored: Codable {
        var current: String
        var keys: [String: String]
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> BlobKeySet {
        guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(bytes)) else {
            throw BlobSealingError(.malformedFile, "\(path) is not a key file ({\"current\": ID, \"keys\": {ID: BASE64}})")
        }
        var keys: [String: [UInt8]] = [:]
        for (id, text) in stored.keys {
            guard let data = Data(base64Encoded: text) else { throw BlobSealingError(.malformedFile, "key \(id) in \(path) is not base64") }
            keys[id] = Array(data)
        }
        return try BlobKeySet(current: stored.current, keys: keys)
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let stored = Stored(current: current, keys: keys.mapValues { Data($0).base64EncodedString() })
        return Array(try encoder.encode(stored)) + [0x0A]
    }

    /// Reads the file, refusing one that group or others may read or write (checked on the
    /// open descriptor, so a file swapped in between is not read unchecked).
    static func read(path: String) throws -> (BlobKeySet, FileStamp) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BlobSealingError(.unreadable, "cannot read the key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw BlobSealingError(.unreadable, "the key file \(path) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw BlobSealingError(.permissions, "the key file \(path) has mode \(String(info.st_mode & 0o777, radix: 8)); only its owner may read it (chmod 600)")
        }
        guard info.st_size <= 1 << 20 else { throw BlobSealingError(.malformedFile, "the key file \(path) is larger than 1 MiB") }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw BlobSealingError(.unreadable, "cannot read the key file \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return (try decode(bytes, path: path), FileStamp(info))
    }

    /// Writes the file so that a reader sees the old version or the new one, never part of
    /// one: a temporary name (0600) beside it, synced, then renamed over it (`replace`) or
    /// linked to its name (not replacing: fails if it exists), and the directory synced.
    func write(to path: String, replace: Bool) throws {
        let bytes = try encoded()
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: .min ... .max))"
        func failure(_ what: String) -> BlobSealingError {
            BlobSealingError(.write, "cannot \(what) \(path): \(String(cString: strerror(errno)))")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("write") }
        var written = false
        defer { if !written { unlink(temporary) } }
        do {
            defer { close(fd) }
            // The umask can only narrow the mode; fchmod makes sure it is exactly 0600.
            guard fchmod(fd, 0o600) == 0 else { throw failure("write") }
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failure("write") }
                offset += n
            }
            guard fsync(fd) == 0 else { throw failure("sync") }
        }
        if replace {
            guard rename(temporary, path) == 0 else { throw failure("replace") }
        } else {
            guard link(temporary, path) == 0 else {
                if errno == EEXIST { throw BlobSealingError(.exists, "\(path) exists already (rotate it, or remove it first)") }
                throw failure("create")
            }
            unlink(temporary)
        }
        written = true
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }
}

/// What identifies one version of the key file: a rename gives a new inode, an edit in place a
/// new modification time or size.
struct FileStamp: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64
    var seconds: Int64
    var nanoseconds: Int64
    var size: Int64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        #if os(Linux)
        seconds = Int64(info.st_mtim.tv_sec)
        nanoseconds = Int64(info.st_mtim.tv_nsec)
        #else
        seconds = Int64(info.st_mtimespec.tv_sec)
        nanoseconds = Int64(info.st_mtimespec.tv_nsec)
        #endif
        size = Int64(info.st_size)
    }

    static func of(path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileStamp(info)
    }
}
