import AsyncHTTPClient
import Audit
import Crypto
import Foundation
import Logging
import NIOCore
import NIOSSL
import RadGridCore
import RedisClient

/// Pushes the audit trail to the regulator's supervision platform: every entry of every chain
/// as a FHIR R4 AuditEvent, in batches of NDJSON, and the `DailyServiceStatistics` of each day
/// once it has closed. Delivery is at least once: the position (`FeedCursorStore`) moves only
/// after a 2xx, and a batch interrupted before its answer is resent with the same entries and
/// the same `X-RadGrid-Batch`, so the receiver drops what it already has.
///
/// Owns its HTTP client: call `shutdown()` when done (the service does when it stops).
public final class SupervisionFeedPusher: Sendable {
    public let settings: SupervisionFeedSettings
    let client: RedisClient
    let prefix: KeyPrefix
    let cursors: FeedCursorStore
    let http: HTTPClient
    let logger: Logger

    public static let entriesContentType = "application/fhir+ndjson"
    public static let statisticsContentType = "application/json"
    /// Signed checkpoint lines, byte for byte as the auditor wrote them (one JSON object a line).
    public static let checkpointsContentType = "application/x-ndjson"

    public init(client: RedisClient, prefix: KeyPrefix, settings: SupervisionFeedSettings, logger: Logger) throws(FeedError) {
        self.settings = settings
        self.client = client
        self.prefix = prefix
        self.logger = logger
        cursors = FeedCursorStore(client: client, prefix: prefix, name: settings.name)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile {
            // Loaded now, so a bad file stops the feed at start rather than at the first push.
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) } catch {
                throw FeedError(.configuration, "cannot load the CA certificates in \(caFile)")
            }
        }
        // No redirects: the platform answers itself, and a redirect must not carry the body elsewhere.
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10), read: Self.timeAmount(settings.requestTimeout)))
        configuration.tlsConfiguration = tls
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// What one `pushPending` delivered.
    public struct Summary: Sendable, Equatable {
        public var batches = 0
        public var entries = 0
        public var statisticsDays = 0
        public var checkpoints = 0
        public init() {}
    }

    /// Pushes everything due now: a batch left unacknowledged by an earlier run first (same
    /// entries, same id), then new entries up to the settle horizon, then the statistics of every
    /// day closed since the last ones. Each POST is retried on network errors, 5xx and 429 with a
    /// doubling pause, up to `maxAttempts` (nil: until cancelled); any other answer throws
    /// `feed.refused` and leaves the position where it was.
    @discardableResult
    public func pushPending(maxAttempts: Int? = nil) async throws -> Summary {
        var summary = Summary()
        var cursor = try await cursors.load()
        if let pending = cursor.pending {
            let entries = try await read(after: cursor.position, through: pending.end, horizon: .max, limit: max(1, pending.count))
            if entries.isEmpty {
                try await cursors.clearPending()
            } else {
                // The same range gives the same id; a range that changed (entries trimmed meanwhile) gets its own.
                let same = entries.count == pending.count && entries.last?.position == pending.end
                let id = same ? pending.id : batchID(after: cursor.position, through: entries[entries.count - 1].position, count: entries.count)
                try await send(entries, id: id, cursor: &cursor, maxAttempts: maxAttempts, summary: &summary)
            }
        }
        var horizon: Int64 = 0
        while true {
            horizon = try await redisMilliseconds() - Self.milliseconds(settings.settle)
            let entries = try await read(after: cursor.position, through: nil, horizon: horizon, limit: settings.batchSize)
            guard let last = entries.last else { break }
            try await send(entries, id: batchID(after: cursor.position, through: last.position, count: entries.count),
                           cursor: &cursor, maxAttempts: maxAttempts, summary: &summary)
        }
        try await pushStatistics(horizon: horizon, cursor: &cursor, maxAttempts: maxAttempts, summary: &summary)
        try await pushCheckpoints(cursor: &cursor, maxAttempts: maxAttempts, summary: &summary)
        return summary
    }

    // MARK: Checkpoints

    /// Every signed checkpoint after the acknowledged one, in batches, as written (the
    /// platform verifies them with the grid's public key; a line is never re-encoded).
    func pushCheckpoints(cursor: inout FeedCursor, maxAttempts: Int?, summary: inout Summary) async throws {
        guard let directory = settings.checkpoints else { return }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("checkpoints-") && $0.hasSuffix(".jsonl") }.sorted()
        var due: [(sequence: Int, line: Substring)] = []
        for name in names {
            for line in (Files.read(directory + "/" + name) ?? "").split(separator: "\n") {
                guard let checkpoint = try? JSONDecoder().decode(AuditCheckpoint.self, from: Data(line.utf8)) else {
                    throw FeedError(.configuration, "a line of \(name) is not a checkpoint; the feed stops rather than skip it")
                }
                if checkpoint.sequence > cursor.checkpointSequence { due.append((checkpoint.sequence, line)) }
            }
        }
        var start = 0
        while start < due.count {
            let slice = due[start..<min(due.count, start + settings.batchSize)]
            let first = slice.first!.sequence, last = slice.last!.sequence
            let id = "\(settings.name)-checkpoints-\(first)-\(last)"
            let body = Array(slice.map { $0.line + "\n" }.joined().utf8)
            try await post(body, contentType: Self.checkpointsContentType, batch: id, maxAttempts: maxAttempts)
            try await cursors.acknowledgeCheckpoints(through: last, batch: id, at: WallClock.nowMilliseconds())
            cursor.checkpointSequence = last
            summary.checkpoints += slice.count
            start += slice.count
        }
    }

    // MARK: Entries

    struct Entry {
        var position: FeedPosition
        var record: AuditRecord
    }

    /// Up to `limit` entries after `cursor` in feed order: those whose stream id is before
    /// `horizon` (ms), or with `end`, those up to and including `end`.
    func read(after cursor: FeedPosition?, through end: FeedPosition?, horizon: Int64, limit: Int) async throws -> [Entry] {
        let chains = try await AuditTrail.chains(client: client, prefix: prefix)
        var found: [Entry] = []
        for first in stride(from: 0, to: chains.count, by: 256) {
            var commands: [RedisCommand] = []
            var asked: [String] = []
            for chain in chains[first..<min(first + 256, chains.count)] {
                guard let stop = end.map({ Self.stop(through: $0, chain: chain) }) ?? (horizon > 0 ? String(horizon - 1) : nil) else { continue }
                let log = AuditTrail(client: client, prefix: prefix, chain: chain).logKey
                commands.append(RedisCommand("XRANGE", RedisArgument(log), RedisArgument(Self.start(after: cursor, chain: chain)), RedisArgument(stop),
                                             "COUNT", RedisArgument(limit)))
                asked.append(chain)
            }
            for (chain, reply) in zip(asked, try await client.pipeline(commands)) {
                for item in try reply.throwingServerError().array ?? [] {
                    guard let record = AuditRecord(streamEntry: item, chain: chain), let position = FeedPosition(chain: chain, entryID: record.id) else {
                        // Not an audit entry (`audit verify` reports it); it cannot become an AuditEvent.
                        logger.error("skipping a malformed entry in an audit chain", metadata: ["chain": "\(chain)"])
                        continue
                    }
                    found.append(Entry(position: position, record: record))
                }
            }
            // Only the first `limit` in feed order can go in this batch: keep memory bounded.
            if found.count > 2 * limit {
                found.sort { $0.position < $1.position }
                found.removeLast(found.count - limit)
            }
        }
        found.sort { $0.position < $1.position }
        return Array(found.prefix(limit))
    }

    /// XRANGE start for `chain` just after `cursor`: exclusive of the cursor in its own chain;
    /// a chain ordered before the cursor's has sent its entries of that millisecond, one after
    /// it has not.
    static func start(after cursor: FeedPosition?, chain: String) -> String {
        guard let cursor else { return "-" }
        if chain == cursor.chain { return "(" + cursor.entryID }
        return chain < cursor.chain ? String(cursor.milliseconds + 1) : String(cursor.milliseconds)
    }

    /// XRANGE end for `chain` through `end` (inclusive), by the same order; nil when nothing of
    /// the chain can be at or before it.
    static func stop(through end: FeedPosition, chain: String) -> String? {
        if chain == end.chain { return end.entryID }
        if chain < end.chain { return String(end.milliseconds) }
        return end.milliseconds > 0 ? String(end.milliseconds - 1) : nil
    }

    /// `<name>-` and 24 hex digits naming the range (start, end, count): the same range always
    /// gets the same id, whatever the serialisation.
    func batchID(after cursor: FeedPosition?, through end: FeedPosition, count: Int) -> String {
        let text = "\(settings.name)\n\(cursor?.description ?? "-")\n\(end)\n\(count)"
        return settings.name + "-" + SHA256.hash(data: Array(text.utf8)).prefix(12).map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// One AuditEvent per line, keys sorted (the same entries always give the same bytes).
    static func ndjson(_ entries: [Entry]) throws -> [UInt8] {
        var body: [UInt8] = []
        for entry in entries {
            body += try JSONSerialization.data(withJSONObject: FHIRAuditEvent.resource(entry.record), options: [.sortedKeys, .withoutEscapingSlashes])
            body.append(UInt8(ascii: "\n"))
        }
        return body
    }

    func send(_ entries: [Entry], id: String, cursor: inout FeedCursor, maxAttempts: Int?, summary: inout Summary) async throws {
        let end = entries[entries.count - 1].position
        let body = try Self.ndjson(entries)
        try await cursors.markPending(.init(id: id, end: end, count: entries.count))
        try await post(body, contentType: Self.entriesContentType, batch: id, maxAttempts: maxAttempts)
        // The series of daily statistics starts on the day of the first entry delivered.
        let statisticsDay = cursor.statisticsDay ?? entries[0].record.timestampMilliseconds / ServiceStatistics.dayMilliseconds
        try await cursors.acknowledge(through: end, batch: id, statisticsDay: statisticsDay, at: WallClock.nowMilliseconds())
        cursor.position = end
        cursor.pending = nil
        cursor.lastBatch = id
        cursor.statisticsDay = statisticsDay
        summary.batches += 1
        summary.entries += entries.count
        logger.debug("audit entries delivered", metadata: ["batch": "\(id)", "entries": "\(entries.count)", "through": "\(end)"])
    }

    // MARK: Statistics

    /// Each day whose end lies `statisticsDelay` before the horizon, from the cursor's next day on.
    func pushStatistics(horizon: Int64, cursor: inout FeedCursor, maxAttempts: Int?, summary: inout Summary) async throws {
        guard var day = cursor.statisticsDay else { return }
        let dayMs = ServiceStatistics.dayMilliseconds
        while (day + 1) * dayMs + Self.milliseconds(settings.statisticsDelay) <= horizon {
            let figures = try await ServiceStatistics.daily(client: client, prefix: prefix, sinceMilliseconds: day * dayMs, untilMilliseconds: (day + 1) * dayMs)
            guard let today = figures.first else { break }
            let id = "\(settings.name)-stats-\(today.day)"
            try await post(Array(try today.encoded()), contentType: Self.statisticsContentType, batch: id, maxAttempts: maxAttempts)
            day += 1
            try await cursors.acknowledgeStatistics(next: day, batch: id, at: WallClock.nowMilliseconds())
            cursor.statisticsDay = day
            summary.statisticsDays += 1
            logger.info("daily service statistics delivered", metadata: ["day": "\(today.day)", "batch": "\(id)"])
        }
    }

    // MARK: HTTP

    /// POSTs one signed body until a 2xx; retries network errors, 5xx and 429 (honouring
    /// `Retry-After` within the backoff's cap).
    func post(_ body: [UInt8], contentType: String, batch: String, maxAttempts: Int?) async throws {
        let signature = FeedSignature.sign(body: body, secret: settings.secret)
        var pause = settings.backoff.first
        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: settings.endpoint)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: contentType)
            request.headers.add(name: "User-Agent", value: "radgrid-feed/1")
            request.headers.add(name: FeedSignature.signatureHeader, value: signature)
            request.headers.add(name: FeedSignature.batchHeader, value: batch)
            request.body = .bytes(ByteBuffer(bytes: body))
            let failure: String
            var retryAfter: Duration?
            do {
                let response = try await http.execute(request, timeout: Self.timeAmount(settings.requestTimeout))
                // Read a little of the answer: the connection can be reused, a refusal explained.
                let reply = try? await response.body.collect(upTo: 64 << 10)
                let status = Int(response.status.code)
                if (200..<300).contains(status) { return }
                guard status == 429 || status >= 500 else {
                    let text = reply.map { Self.excerpt(Array($0.readableBytesView)) } ?? ""
                    throw FeedError(.refused, "the endpoint refused batch \(batch) with HTTP \(status)" + (text.isEmpty ? "" : ": \(text)"))
                }
                failure = "HTTP \(status)"
                retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init).map { .milliseconds(Int64(min(max($0, 0), 86_400) * 1000)) }
            } catch let error as FeedError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                failure = Self.describe(error)
            }
            if let maxAttempts, attempt >= maxAttempts {
                throw FeedError(.unreachable, "batch \(batch) was not accepted after \(attempt) attempt(s): \(failure)")
            }
            let wait = min(max(pause, retryAfter ?? .zero), settings.backoff.last)
            logger.warning("supervision feed push failed; will retry", metadata: [
                "batch": "\(batch)", "attempt": "\(attempt)", "reason": "\(failure)", "retry_in": "\(wait)",
            ])
            try await Task.sleep(for: wait)
            pause = min(pause * 2, settings.backoff.last)
        }
    }

    /// Printable start of a refusal's body (the receiver's explanation).
    static func excerpt(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(300), as: UTF8.self)
        return String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0.isPunctuation || $0 == " ") ? $0 : " " }).trimmingCharacters(in: .whitespaces)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? IOError { return error.description }
        return String(describing: type(of: error))
    }

    // MARK: Time

    func redisMilliseconds() async throws -> Int64 {
        let parts = try await client.send("TIME").array ?? []
        guard parts.count == 2, let seconds = parts[0].int, let micros = parts[1].int else {
            throw FeedError(.unexpectedReply, "TIME returned no time")
        }
        return seconds * 1000 + micros / 1000
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
