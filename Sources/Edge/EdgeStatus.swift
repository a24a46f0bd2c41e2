import Foundation
import SQLite

/// What the spool holds, by study: `radgridctl edge status` and the edge's `GET /status`.
///
/// Each study is in exactly one of: `queued` (waiting to be sent or committed), `in_flight`
/// (being uploaded), `forwarded` (every instance acknowledged upstream and the study
/// committed), `failed` (some instance refused for good, nothing left to send).
public struct EdgeStatus: Sendable, Codable, Equatable {
    public struct Instances: Sendable, Codable, Equatable {
        public var queued = 0, inFlight = 0, forwarded = 0, failed = 0
        enum CodingKeys: String, CodingKey { case queued, inFlight = "in_flight", forwarded, failed }
    }
    public struct Failure: Sendable, Codable, Equatable {
        public var study: String
        public var sop: String
        public var reason: String
    }
    public struct Upstream: Sendable, Codable, Equatable {
        public var lastError: String?
        public var lastErrorAt: Double?
        public var lastSuccessAt: Double?
        enum CodingKeys: String, CodingKey { case lastError = "last_error", lastErrorAt = "last_error_at", lastSuccessAt = "last_success_at" }
    }

    public var queued = 0
    public var inFlight = 0
    public var forwarded = 0
    public var failed = 0
    /// Age in seconds of the oldest study not yet forwarded (0 when none waits).
    public var oldestSeconds = 0.0
    public var instances = Instances()
    public var spoolBytes: Int64 = 0
    public var spoolLimitBytes: Int64 = 0
    public var upstream = Upstream()
    /// The most recent refusals (at most 20), with the upstream's reason.
    public var failures: [Failure] = []

    enum CodingKeys: String, CodingKey {
        case queued, inFlight = "in_flight", forwarded, failed, oldestSeconds = "oldest_s", instances
        case spoolBytes = "spool_bytes", spoolLimitBytes = "spool_limit_bytes", upstream, failures
    }

    static func read(_ db: SQLiteDatabase, now: Double, limitBytes: Int64) throws -> EdgeStatus {
        var status = EdgeStatus()
        status.spoolLimitBytes = limitBytes
        let studies = try db.query("""
            SELECT s.received_at, s.committed_at,
              SUM(i.state = 'queued'), SUM(i.state = 'sending'), SUM(i.state = 'forwarded'), SUM(i.state = 'failed')
            FROM studies s LEFT JOIN instances i ON i.study = s.uid GROUP BY s.uid
            """)
        var oldest: Double?
        for row in studies {
            let queued = row[2].int ?? 0, sending = row[3].int ?? 0, forwarded = row[4].int ?? 0, failed = row[5].int ?? 0
            status.instances.queued += queued
            status.instances.inFlight += sending
            status.instances.forwarded += forwarded
            status.instances.failed += failed
            let waiting: Bool
            if sending > 0 {
                status.inFlight += 1
                waiting = true
            } else if queued > 0 || (row[1].double == nil && failed == 0) {
                status.queued += 1
                waiting = true
            } else if failed > 0 {
                status.failed += 1
                waiting = false
            } else {
                status.forwarded += 1
                waiting = false
            }
            if waiting, let received = row[0].double { oldest = min(oldest ?? received, received) }
        }
        status.oldestSeconds = oldest.map { max(0, (now - $0) * 1000).rounded() / 1000 } ?? 0
        status.spoolBytes = Int64(try db.scalar("SELECT COALESCE(SUM(bytes), 0) FROM instances WHERE state != 'forwarded'").int ?? 0)
        for row in try db.query("SELECT key, value FROM link") {
            switch row[0].text {
            case "last_error": status.upstream.lastError = row[1].text
            case "last_error_at": status.upstream.lastErrorAt = row[1].text.flatMap(Double.init)
            case "last_success_at": status.upstream.lastSuccessAt = row[1].text.flatMap(Double.init)
            case "limit_bytes" where limitBytes == 0: status.spoolLimitBytes = row[1].text.flatMap(Int64.init) ?? 0
            default: break
            }
        }
        status.failures = try db.query("SELECT study, sop, failure FROM instances WHERE state = 'failed' ORDER BY settled_at DESC LIMIT 20").map {
            Failure(study: $0[0].text ?? "", sop: $0[1].text ?? "", reason: $0[2].text ?? "")
        }
        return status
    }

    /// Reads a spool's status from another process (`radgridctl edge status`), read-only.
    public static func read(spool directory: String, now: Double = Date().timeIntervalSince1970) throws(EdgeError) -> EdgeStatus {
        let path = "\(directory)/spool.db"
        guard FileManager.default.fileExists(atPath: path) else { throw EdgeError(.configuration, "no edge spool at \(directory)") }
        do {
            let db = try SQLiteDatabase(path: path, readOnly: true)
            return try read(db, now: now, limitBytes: 0)
        } catch {
            throw EdgeError(.spool, "cannot read the spool: \(error)")
        }
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
