import Crypto
import Foundation
import GridContract
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import RadGridCore
import SQLite

/// The edge's durable spool: every acknowledged instance is a file (written, fsynced, renamed
/// into place) and a row in an SQLite index (WAL, `synchronous=FULL`) before the sender hears
/// "stored". Survives `kill -9` and power loss; the forwarder drains it.
///
/// Layout of the spool directory (mode 0700):
/// - `spool.db` — studies, instances and the upstream link's last outcome;
/// - `objects/<2 hex>/<sha256 of the SOP Instance UID>.dcm` — the instances (mode 0600);
/// - `tmp/` — files being written (removed at start).
public final class EdgeSpool: Sendable {
    public struct Settings: Sendable {
        /// Bytes of instances the spool may hold (queued, in flight or failed); above it the
        /// edge refuses new instances (C-STORE A700, STOW-RS 503).
        public var limitBytes: Int64 = 10 << 30
        /// Free space the file system must keep beside the spool.
        public var reserveBytes: Int64 = 256 << 20
        /// A study with no new instance for this long counts as complete (when no association
        /// release or explicit commit said so first).
        public var stableAge: Double = 10
        /// Forwarded studies stay listed this long, failed instances (and their files) longer.
        public var keepForwarded: Double = 7 * 86_400
        public var keepFailed: Double = 30 * 86_400
        /// A transient refusal upstream is retried this many times before the instance counts as failed.
        public var maxAttempts = 20
        public init() {}
    }

    /// One instance offered to the spool.
    public struct Incoming: Sendable {
        public var study: StudyUID
        public var sop: SOPInstanceUID
        public var priority: Priority
        public var bytes: [UInt8]
        public init(study: StudyUID, sop: SOPInstanceUID, priority: Priority, bytes: [UInt8]) {
            self.study = study
            self.sop = sop
            self.priority = priority
            self.bytes = bytes
        }
    }

    public enum AcceptOutcome: Sendable, Equatable {
        case stored
        /// The same SOP instance is already spooled (or forwarded): nothing changed.
        case duplicate
    }

    /// Instances of one study claimed for one upload.
    public struct Batch: Sendable {
        public struct Item: Sendable {
            public var sop: String
            public var path: String
            public var bytes: Int
        }
        public var study: String
        public var priority: Priority
        public var items: [Item]
        public var bytes: Int { items.reduce(0) { $0 + $1.bytes } }
    }

    public let directory: String
    public let settings: Settings
    private let database: LockedDatabase
    private let heldBytes: NIOLockedValueBox<Int64>
    private let logger: Logger

    /// Opens (creating) the spool in `directory`, then recovers from a crash: claims in flight
    /// go back to the queue, half-written files and files no row names are removed.
    public init(directory: String, settings: Settings = Settings(), logger: Logger = Logger(label: "radgrid.edge")) throws(EdgeError) {
        self.directory = directory
        self.settings = settings
        self.logger = logger
        let fm = FileManager.default
        for sub in ["", "objects", "tmp"] {
            let path = sub.isEmpty ? directory : "\(directory)/\(sub)"
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
            } catch {
                throw EdgeError(.spool, "cannot create the spool directory \(path)")
            }
        }
        let db: SQLiteDatabase
        do {
            db = try SQLiteDatabase(path: "\(directory)/spool.db")
            try db.execute(Self.schema)
            // Claims of a process that died are not in flight any more.
            try db.run("UPDATE instances SET state = 'queued' WHERE state = 'sending'")
            try db.run("INSERT OR REPLACE INTO link (key, value) VALUES ('limit_bytes', ?)", [.text(String(settings.limitBytes))])
            let held = try db.scalar("SELECT COALESCE(SUM(bytes), 0) FROM instances WHERE state IN ('queued', 'sending', 'failed')").int ?? 0
            heldBytes = NIOLockedValueBox(Int64(held))
        } catch {
            throw EdgeError(.spool, "cannot open the spool index: \(error)")
        }
        chmod("\(directory)/spool.db", 0o600)
        database = LockedDatabase(db)
        try removeOrphans()
    }

    static let schema = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = FULL;
        CREATE TABLE IF NOT EXISTS studies (
            uid TEXT PRIMARY KEY,
            priority INTEGER NOT NULL,
            received_at REAL NOT NULL,
            last_instance_at REAL NOT NULL,
            complete_reason TEXT,
            committed_at REAL
        );
        CREATE TABLE IF NOT EXISTS instances (
            sop TEXT PRIMARY KEY,
            study TEXT NOT NULL,
            file TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            received_at REAL NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL DEFAULT 0,
            settled_at REAL,
            failure TEXT
        );
        CREATE INDEX IF NOT EXISTS instances_by_study ON instances(study, state);
        CREATE INDEX IF NOT EXISTS instances_by_state ON instances(state);
        CREATE TABLE IF NOT EXISTS link (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """

    // MARK: Intake

    /// Stores `items` durably (files fsynced, one index transaction) and says, per item,
    /// whether it was new. Throws `edge.spoolFull` (nothing stored) when they do not fit.
    public func accept(_ items: [Incoming], now: Double = Date().timeIntervalSince1970) async throws(EdgeError) -> [AcceptOutcome] {
        try await blocking { () throws(EdgeError) -> [AcceptOutcome] in try self.acceptNow(items, now: now) }
    }

    func acceptNow(_ items: [Incoming], now: Double) throws(EdgeError) -> [AcceptOutcome] {
        let incoming = Int64(items.reduce(0) { $0 + $1.bytes.count })
        try reserve(incoming)
        var written: [(item: Incoming, file: String)] = []
        do {
            for item in items { written.append((item, try writeObject(item))) }
            try syncDirectories(Set(written.map { ($0.file as NSString).deletingLastPathComponent }))
        } catch {
            for entry in written { unlink(entry.file) }
            release(incoming)
            throw error
        }
        var surplus: [String] = []
        do {
            let outcomes = try database.withLockedValue { db in
                try db.transaction {
                    try written.map { item, file -> AcceptOutcome in
                        let sop = item.sop.rawValue, study = item.study.rawValue
                        if let known = try db.query("SELECT state FROM instances WHERE sop = ?", [.text(sop)]).first {
                            // Already forwarded: its file was deleted, so the copy just written is surplus.
                            if known[0].text == "forwarded" { surplus.append(file) }
                            return .duplicate
                        }
                        try db.run("""
                            INSERT INTO studies (uid, priority, received_at, last_instance_at) VALUES (?1, ?2, ?3, ?3)
                            ON CONFLICT(uid) DO UPDATE SET priority = MIN(priority, ?2), last_instance_at = ?3,
                              complete_reason = CASE WHEN committed_at IS NULL THEN complete_reason END, committed_at = NULL
                            """, [.text(study), SQLiteValue(item.priority.rank), .real(now)])
                        try db.run("INSERT INTO instances (sop, study, file, bytes, received_at, state) VALUES (?, ?, ?, ?, ?, 'queued')",
                                   [.text(sop), .text(study), .text(file), SQLiteValue(item.bytes.count), .real(now)])
                        return .stored
                    }
                }
            }
            // A duplicate of a spooled instance was written over its own file (same path); one
            // already forwarded left a new file nobody needs.
            for file in surplus { unlink(file) }
            var freed: Int64 = 0
            for (entry, outcome) in zip(written, outcomes) where outcome == .duplicate {
                freed += Int64(entry.item.bytes.count)
            }
            release(freed)
            Metrics.received.increment(by: outcomes.count(where: { $0 == .stored }))
            return outcomes
        } catch {
            for entry in written { unlink(entry.file) }
            release(incoming)
            throw EdgeError(.spool, "cannot record the instances: \(error)")
        }
    }

    private func reserve(_ bytes: Int64) throws(EdgeError) {
        var stats = statvfs()
        if statvfs(directory, &stats) == 0 {
            let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
            if free - bytes < settings.reserveBytes {
                Metrics.refused.increment()
                throw EdgeError(.spoolFull, "the spool's file system is nearly full")
            }
        }
        let fits = heldBytes.withLockedValue { held in
            guard held + bytes <= settings.limitBytes else { return false }
            held += bytes
            return true
        }
        guard fits else {
            Metrics.refused.increment()
            throw EdgeError(.spoolFull, "the spool holds its limit of \(settings.limitBytes >> 20) MiB; the upstream is behind")
        }
    }

    private func release(_ bytes: Int64) {
        guard bytes != 0 else { return }
        heldBytes.withLockedValue { $0 = max(0, $0 - bytes) }
    }

    /// Where an instance lives: named by the hash of its UID, so a re-send finds the same path.
    func objectPath(_ sop: String) -> String {
        let digest = SHA256.hash(data: Array(sop.utf8)).map { String(format: "%02x", $0) }.joined()
        return "\(directory)/objects/\(digest.prefix(2))/\(digest).dcm"
    }

    private func writeObject(_ item: Incoming) throws(EdgeError) -> String {
        let final = objectPath(item.sop.rawValue)
        let folder = (final as NSString).deletingLastPathComponent
        if mkdir(folder, 0o700) != 0 && errno != EEXIST { throw EdgeError(.spool, "cannot create \(folder)") }
        let temporary = "\(directory)/tmp/\(UUID().uuidString)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EdgeError(.spool, "cannot create a spool file (errno \(errno))") }
        var failed = false
        item.bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; failed = true; return }
                offset += n
            }
        }
        if !failed && fsync(fd) != 0 { failed = true }
        close(fd)
        guard !failed, rename(temporary, final) == 0 else {
            unlink(temporary)
            throw EdgeError(.spoolFull, "cannot write a spool file (errno \(errno))")
        }
        return final
    }

    /// The renames are durable once their directories are synced.
    private func syncDirectories(_ folders: Set<String>) throws(EdgeError) {
        for folder in folders {
            let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw EdgeError(.spool, "cannot open \(folder)") }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw EdgeError(.spool, "cannot sync \(folder)") }
        }
    }

    /// Files no row names (written just before a crash, or left by a failed index write).
    private func removeOrphans() throws(EdgeError) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: "\(directory)/tmp")) ?? [] { unlink("\(directory)/tmp/\(name)") }
        let known: Set<String>
        do {
            known = try database.withLockedValue { db in
                Set(try db.query("SELECT file FROM instances WHERE state != 'forwarded'").compactMap { $0[0].text })
            }
        } catch {
            throw EdgeError(.spool, "cannot read the spool index: \(error)")
        }
        var removed = 0
        for folder in (try? fm.contentsOfDirectory(atPath: "\(directory)/objects")) ?? [] {
            let path = "\(directory)/objects/\(folder)"
            for name in (try? fm.contentsOfDirectory(atPath: path)) ?? [] where !known.contains("\(path)/\(name)") {
                unlink("\(path)/\(name)")
                removed += 1
            }
        }
        if removed > 0 { logger.notice("removed spool files no index row names", metadata: ["files": "\(removed)"]) }
    }

    /// The studies seen complete: an association released, an explicit commit.
    public func markComplete(_ studies: [StudyUID], reason: String) async throws(EdgeError) {
        guard !studies.isEmpty else { return }
        try await inTransaction { db in
            for study in studies {
                try db.run("UPDATE studies SET complete_reason = ? WHERE uid = ? AND complete_reason IS NULL", [.text(reason), .text(study.rawValue)])
            }
        }
    }

    /// Whether the spool knows `study` (for an explicit commit's 404).
    public func knows(_ study: StudyUID) async throws(EdgeError) -> Bool {
        try await reading { db in try !db.query("SELECT 1 FROM studies WHERE uid = ?", [.text(study.rawValue)]).isEmpty }
    }

    // MARK: Forwarding

    /// Studies quiet for the stable age become complete; returns how many.
    @discardableResult
    public func completeStable(now: Double = Date().timeIntervalSince1970) async throws(EdgeError) -> Int {
        try await inTransaction { db in
            try db.run("UPDATE studies SET complete_reason = 'stable-age' WHERE complete_reason IS NULL AND last_instance_at <= ?",
                       [.real(now - self.settings.stableAge)])
        }
    }

    /// Claims the next instances to send: the most urgent complete study first (a STAT study
    /// overtakes a routine backlog), oldest first within a priority; at most `maxBytes`
    /// (always at least one instance) and `maxInstances`.
    public func claim(maxBytes: Int, maxInstances: Int, now: Double = Date().timeIntervalSince1970) async throws(EdgeError) -> Batch? {
        try await inTransaction { db -> Batch? in
            let rows = try db.query("""
                SELECT i.sop, i.file, i.bytes, s.uid, s.priority FROM instances i JOIN studies s ON s.uid = i.study
                WHERE i.state = 'queued' AND i.next_at <= ? AND s.complete_reason IS NOT NULL
                ORDER BY s.priority, s.received_at, i.received_at LIMIT ?
                """, [.real(now), SQLiteValue(maxInstances)])
            guard let first = rows.first, let study = first[3].text else { return nil }
            var items: [Batch.Item] = []
            var bytes = 0
            for row in rows where row[3].text == study {
                let size = row[2].int ?? 0
                if !items.isEmpty && bytes + size > maxBytes { break }
                items.append(.init(sop: row[0].text ?? "", path: row[1].text ?? "", bytes: size))
                bytes += size
            }
            for item in items { try db.run("UPDATE instances SET state = 'sending' WHERE sop = ?", [.text(item.sop)]) }
            return Batch(study: study, priority: Priority(rank: first[4].int ?? 2) ?? .routine, items: items)
        }
    }

    /// Records what the upstream said about a batch: acknowledged instances are forwarded (their
    /// files deleted), refused ones failed with the reason, the rest queued again after `retryAfter`.
    public func settle(_ batch: Batch, forwarded: Set<String>, failed: [String: String], retryAfter: Double,
                       now: Double = Date().timeIntervalSince1970) async throws(EdgeError) {
        var freed: Int64 = 0
        try await inTransaction { db in
            for item in batch.items {
                if forwarded.contains(item.sop) {
                    try db.run("UPDATE instances SET state = 'forwarded', settled_at = ? WHERE sop = ?", [.real(now), .text(item.sop)])
                } else if let reason = failed[item.sop] {
                    try db.run("UPDATE instances SET state = 'failed', failure = ?, settled_at = ? WHERE sop = ?",
                               [.text(reason), .real(now), .text(item.sop)])
                } else {
                    try db.run("""
                        UPDATE instances SET attempts = attempts + 1, next_at = ?,
                          state = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'queued' END,
                          failure = CASE WHEN attempts + 1 >= ? THEN 'gave up after repeated transient refusals' END
                        WHERE sop = ?
                        """, [.real(now + retryAfter), SQLiteValue(self.settings.maxAttempts), SQLiteValue(self.settings.maxAttempts), .text(item.sop)])
                }
            }
        }
        for item in batch.items where forwarded.contains(item.sop) {
            unlink(item.path)
            freed += Int64(item.bytes)
        }
        release(freed)
        Metrics.forwarded.increment(by: forwarded.count)
        if !failed.isEmpty { Metrics.failed.increment(by: failed.count) }
    }

    /// Puts a whole batch back in the queue (the link failed; nothing is counted against it).
    public func requeue(_ batch: Batch) async throws(EdgeError) {
        try await inTransaction { db in
            for item in batch.items { try db.run("UPDATE instances SET state = 'queued' WHERE sop = ? AND state = 'sending'", [.text(item.sop)]) }
        }
    }

    /// Complete studies with every instance settled and at least one forwarded, not yet
    /// committed upstream. A study whose every instance failed is closed here without a commit.
    public func studiesToCommit() async throws(EdgeError) -> [StudyUID] {
        try await inTransaction { db in
            let rows = try db.query("""
                SELECT s.uid, SUM(i.state IN ('queued', 'sending')), SUM(i.state = 'forwarded') FROM studies s JOIN instances i ON i.study = s.uid
                WHERE s.complete_reason IS NOT NULL AND s.committed_at IS NULL GROUP BY s.uid ORDER BY MIN(s.priority), MIN(s.received_at)
                """)
            var ready: [StudyUID] = []
            for row in rows where (row[1].int ?? 1) == 0 {
                guard let text = row[0].text else { continue }
                if (row[2].int ?? 0) == 0 {
                    try db.run("UPDATE studies SET committed_at = ? WHERE uid = ?", [.real(Date().timeIntervalSince1970), .text(text)])
                } else if let uid = try? StudyUID(text) {
                    ready.append(uid)
                }
            }
            return ready
        }
    }

    public func markCommitted(_ study: StudyUID, now: Double = Date().timeIntervalSince1970) async throws(EdgeError) {
        try await inTransaction { db in
            try db.run("UPDATE studies SET committed_at = ? WHERE uid = ? AND committed_at IS NULL", [.real(now), .text(study.rawValue)])
        }
    }

    /// The upstream's last outcome, for `radgridctl edge status`.
    public func recordLink(error: String?, now: Double = Date().timeIntervalSince1970) async throws(EdgeError) {
        try await inTransaction { db in
            if let error {
                try db.run("INSERT OR REPLACE INTO link (key, value) VALUES ('last_error', ?), ('last_error_at', ?)",
                           [.text(error), .text(String(now))])
            } else {
                try db.run("INSERT OR REPLACE INTO link (key, value) VALUES ('last_success_at', ?)", [.text(String(now))])
            }
        }
    }

    /// Drops rows of studies forwarded long ago, and failed instances (with their files) older still.
    public func prune(now: Double = Date().timeIntervalSince1970) async throws(EdgeError) {
        let failedFiles = try await inTransaction { db -> [(String, Int)] in
            let old = try db.query("SELECT file, bytes FROM instances WHERE state = 'failed' AND settled_at < ?", [.real(now - self.settings.keepFailed)])
            try db.run("DELETE FROM instances WHERE state = 'failed' AND settled_at < ?", [.real(now - self.settings.keepFailed)])
            try db.run("""
                DELETE FROM instances WHERE study IN (SELECT uid FROM studies WHERE committed_at < ?)
                  AND state = 'forwarded'
                """, [.real(now - self.settings.keepForwarded)])
            try db.run("DELETE FROM studies WHERE committed_at < ? AND NOT EXISTS (SELECT 1 FROM instances WHERE study = uid)",
                       [.real(now - self.settings.keepForwarded)])
            return old.map { ($0[0].text ?? "", $0[1].int ?? 0) }
        }
        // Outside the transaction: a checkpoint cannot run inside one.
        try await reading { db in try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        for (file, _) in failedFiles { unlink(file) }
        release(Int64(failedFiles.reduce(0) { $0 + $1.1 }))
    }

    /// Failed instances (of one study, or all) go back to the queue; returns how many.
    public func retryFailed(study: String? = nil) async throws(EdgeError) -> Int {
        try await inTransaction { db in try Self.requeueFailed(db, study: study) }
    }

    /// `radgridctl edge retry`: the same, from another process while the edge runs (only the
    /// index changes; the running edge picks the instances up).
    public static func retryFailed(spool directory: String, study: String?) throws(EdgeError) -> Int {
        let path = "\(directory)/spool.db"
        guard FileManager.default.fileExists(atPath: path) else { throw EdgeError(.configuration, "no edge spool at \(directory)") }
        do {
            let db = try SQLiteDatabase(path: path)
            return try db.transaction { try requeueFailed(db, study: study) }
        } catch {
            throw EdgeError(.spool, "cannot update the spool: \(error)")
        }
    }

    private static func requeueFailed(_ db: SQLiteDatabase, study: String?) throws -> Int {
        let count = try db.run("""
            UPDATE instances SET state = 'queued', attempts = 0, next_at = 0, failure = NULL, settled_at = NULL
            WHERE state = 'failed' AND (?1 IS NULL OR study = ?1)
            """, [SQLiteValue(study)])
        try db.run("UPDATE studies SET committed_at = NULL WHERE uid IN (SELECT study FROM instances WHERE state = 'queued')")
        return count
    }

    public func status(now: Double = Date().timeIntervalSince1970) async throws(EdgeError) -> EdgeStatus {
        try await reading { db in try EdgeStatus.read(db, now: now, limitBytes: self.settings.limitBytes) }
    }

    public var bytesHeld: Int64 { heldBytes.withLockedValue { $0 } }

    // MARK: Off the cooperative pool

    @discardableResult
    private func inTransaction<T: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> T) async throws(EdgeError) -> T {
        try await blocking { () throws(EdgeError) -> T in
            do {
                return try self.database.withLockedValue { db in try db.transaction { try body(db) } }
            } catch let error as EdgeError {
                throw error
            } catch {
                throw EdgeError(.spool, "spool index: \(error)")
            }
        }
    }

    private func reading<T: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> T) async throws(EdgeError) -> T {
        try await blocking { () throws(EdgeError) -> T in
            do {
                return try self.database.withLockedValue { db in try body(db) }
            } catch let error as EdgeError {
                throw error
            } catch {
                throw EdgeError(.spool, "spool index: \(error)")
            }
        }
    }

    /// SQLite and fsync block: they run on NIO's blocking pool, never on the cooperative one.
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(EdgeError) -> T) async throws(EdgeError) -> T {
        let result: Result<T, EdgeError>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { () -> Result<T, EdgeError> in
                do throws(EdgeError) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch {
            throw EdgeError(.spool, "the blocking thread pool is not running")
        }
        return try result.get()
    }
}

/// The spool's one connection, used by one thread at a time (SQLite connections are not
/// thread-safe; the lock is what makes sharing it sound).
private final class LockedDatabase: @unchecked Sendable {
    private let lock = NIOLock()
    private let database: SQLiteDatabase
    init(_ database: SQLiteDatabase) { self.database = database }
    func withLockedValue<T>(_ body: (SQLiteDatabase) throws -> T) rethrows -> T {
        try lock.withLock { try body(database) }
    }
}
