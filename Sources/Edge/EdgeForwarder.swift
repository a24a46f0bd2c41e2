import AsyncHTTPClient
import DICOMWeb
import Foundation
import GridContract
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Zstd

/// Sends the spool to the central gateway's STOW-RS: batches of one study's instances as one
/// `multipart/related` body, zstd-compressed on the wire, a few uploads in parallel, within a
/// bandwidth cap; the most urgent study first. An instance leaves the spool only once the
/// upstream's response names it stored; a complete study is then committed upstream.
public struct EdgeForwarder: Service {
    public struct Settings: Sendable {
        /// The central gateway's base URL (`https://grid.example.org:8104`).
        public var upstream: String
        /// The site's bearer token at the central gateway.
        public var token: String
        /// Uploads in flight at once.
        public var parallelUploads = 4
        /// Uncompressed bytes of instances in one upload (at least one instance): small enough
        /// that uploads run in parallel and a connection reset costs little, large enough that
        /// the round trip per upload does not dominate.
        public var batchBytes = 4 << 20
        public var batchInstances = 256
        /// Bandwidth cap on the wire (all uploads together), megabits per second; nil for none.
        public var maxMbps: Double?
        public var compressionLevel = 3
        /// How long one upload may take.
        public var requestTimeout: TimeAmount = .seconds(600)
        /// Pause after a failed upload: doubling from the first to the last.
        public var backoff: (first: Double, last: Double) = (0.25, 30)
        /// PEM file of the CA certificates the upstream's certificate must chain to; nil for
        /// the system's trust store.
        public var caFile: String?
        /// PEM certificate chain and key the edge presents when the centre asks for a client
        /// certificate (mutual TLS).
        public var clientCertificate: (chain: String, key: String)?
        public init(upstream: String, token: String) {
            self.upstream = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
            self.token = token
        }
    }

    let spool: EdgeSpool
    let settings: Settings
    let logger: Logger
    let http: HTTPClient
    let link: LinkState
    let throttle: Throttle?

    public init(spool: EdgeSpool, settings: Settings, logger: Logger) throws(EdgeError) {
        self.spool = spool
        self.settings = settings
        self.logger = logger
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(120)))
        configuration.tlsConfiguration = try Self.tls(settings)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        link = LinkState(backoff: settings.backoff, batchBytes: settings.batchBytes)
        throttle = settings.maxMbps.map { Throttle(bytesPerSecond: $0 * 1_000_000 / 8) }
    }

    /// TLS 1.2 or later, the upstream's certificate verified (against `caFile` when given),
    /// the client certificate loaded now so a bad file stops the edge at start.
    static func tls(_ settings: Settings) throws(EdgeError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            if let caFile = settings.caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let (chain, key) = settings.clientCertificate {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(chain).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
        } catch {
            throw EdgeError(.configuration, "cannot load the TLS certificates or key: \(error)")
        }
        return tls
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<max(1, settings.parallelUploads) {
                group.addTask { await self.uploads(lane: lane) }
            }
            group.addTask { await self.housekeeping() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        try? await http.shutdown()
    }

    /// One upload lane: claim a batch, send it, settle it; idle briefly when nothing is due.
    func uploads(lane: Int) async {
        while !Task.isCancelled {
            if let wait = link.pause(), wait > 0 {
                try? await Task.sleep(for: .seconds(min(wait, 1)))
                continue
            }
            do {
                guard let batch = try await spool.claim(maxBytes: link.batchBytes, maxInstances: settings.batchInstances) else {
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                await send(batch)
            } catch {
                logger.error("spool failure in the forwarder", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Studies made complete by stable age, commits upstream, pruning and the gauges.
    func housekeeping() async {
        var lastPrune = 0.0
        var lastGauges = 0.0
        while !Task.isCancelled {
            do {
                try await spool.completeStable()
                if link.pause() == nil { try await commitReady() }
                let now = Date().timeIntervalSince1970
                if now - lastPrune > 3_600 {
                    lastPrune = now
                    try await spool.prune(now: now)
                }
                // The status reads every study: every few seconds is enough for the gauges.
                if now - lastGauges >= 5 {
                    lastGauges = now
                    let status = try await spool.status(now: now)
                    Metrics.spoolBytes.record(spool.bytesHeld)
                    Metrics.queuedStudies.record(status.queued + status.inFlight)
                    Metrics.oldestSeconds.record(status.oldestSeconds)
                }
            } catch {
                logger.error("spool failure in the forwarder", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    // MARK: One upload

    func send(_ batch: EdgeSpool.Batch) async {
        let body: UploadBody
        do {
            body = try await UploadBody.make(batch, compress: link.compress ? settings.compressionLevel : nil)
        } catch {
            // An instance file that cannot be read is lost to this spool: say so, do not loop.
            let failed = Dictionary(uniqueKeysWithValues: batch.items.map { ($0.sop, "the spooled file cannot be read") })
            logger.error("spooled files unreadable", metadata: ["study": "\(batch.study)", "error": "\(error)"])
            try? await spool.settle(batch, forwarded: [], failed: failed, retryAfter: 0)
            return
        }
        var request = HTTPClientRequest(url: "\(settings.upstream)/studies/\(batch.study)?priority=\(batch.priority.rawValue)")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(settings.token)")
        request.headers.add(name: "Content-Type", value: "multipart/related; type=\"application/dicom\"; boundary=\(body.boundary)")
        if body.compressed { request.headers.add(name: "Content-Encoding", value: "zstd") }
        request.body = .stream(ThrottledBytes(bytes: body.bytes, throttle: throttle), length: .known(Int64(body.bytes.count)))
        let outcome: UploadOutcome
        do {
            let response = try await http.execute(request, timeout: settings.requestTimeout)
            let reply = try await response.body.collect(upTo: 64 << 20)
            outcome = UploadOutcome.judge(status: Int(response.status.code), body: Array(reply.readableBytesView),
                                          retryAfter: response.headers.first(name: "Retry-After").flatMap(Double.init), batch: batch)
        } catch {
            outcome = .linkFailure("cannot reach the upstream: \(Self.describe(error))", retryAfter: nil)
        }
        await settle(batch, outcome, wireBytes: body.bytes.count)
    }

    func settle(_ batch: EdgeSpool.Batch, _ outcome: UploadOutcome, wireBytes: Int) async {
        do {
            switch outcome {
            case .answered(let forwarded, let failed, let transient):
                Metrics.uploads.increment()
                Metrics.wireBytes.increment(by: wireBytes)
                link.succeeded()
                try await spool.settle(batch, forwarded: forwarded, failed: failed, retryAfter: transient ? link.nextPause() : 0)
                try await spool.recordLink(error: nil)
                // The study's last batch: commit it now rather than at the next housekeeping round.
                try await commitReady()
                if !failed.isEmpty {
                    logger.warning("upstream refused instances", metadata: ["study": "\(batch.study)", "refused": "\(failed.count)"])
                }
            case .tooLarge:
                Metrics.uploadFailed("too-large").increment()
                if batch.items.count > 1 {
                    link.shrinkBatches(below: batch.bytes)
                    try await spool.requeue(batch)
                } else {
                    try await spool.settle(batch, forwarded: [], failed: [batch.items[0].sop: "the upstream refuses an instance this large (413)"], retryAfter: 0)
                }
            case .encodingRefused:
                Metrics.uploadFailed("encoding").increment()
                logger.warning("the upstream does not take zstd bodies; sending uncompressed")
                link.stopCompressing()
                try await spool.requeue(batch)
            case .linkFailure(let reason, let retryAfter):
                Metrics.uploadFailed("link").increment()
                let pause = link.failed(retryAfter: retryAfter)
                logger.warning("upload failed; will retry", metadata: ["study": "\(batch.study)", "reason": "\(reason)", "retry_s": "\(pause)"])
                try await spool.requeue(batch)
                try await spool.recordLink(error: reason)
            }
        } catch {
            logger.error("cannot record an upload's outcome in the spool", metadata: ["error": "\(error)"])
        }
    }

    /// Commits every study whose instances are all settled (each once, whichever lane gets it).
    func commitReady() async throws {
        for study in try await spool.studiesToCommit() where link.beginCommit(study.rawValue) {
            let committed = await commit(study)
            link.endCommit(study.rawValue)
            guard committed else { break }
        }
    }

    /// Commits a study upstream; false when the link failed (stop committing for now).
    func commit(_ study: StudyUID) async -> Bool {
        var request = HTTPClientRequest(url: "\(settings.upstream)/studies/\(study)/commit")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(settings.token)")
        do {
            let response = try await http.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 1 << 20)
            switch response.status.code {
            case 200:
                try await spool.markCommitted(study)
                Metrics.committed.increment()
                logger.info("study forwarded and committed upstream", metadata: ["study": "\(study)"])
                return true
            case 404, 403:
                // The upstream holds none of it (or another site does): nothing to commit there.
                logger.error("upstream cannot commit the study", metadata: ["study": "\(study)", "status": "\(response.status.code)"])
                try await spool.markCommitted(study)
                return true
            default:
                let reason = "commit answered HTTP \(response.status.code)"
                _ = link.failed(retryAfter: response.headers.first(name: "Retry-After").flatMap(Double.init))
                try await spool.recordLink(error: reason)
                return false
            }
        } catch {
            _ = link.failed(retryAfter: nil)
            try? await spool.recordLink(error: "cannot reach the upstream: \(Self.describe(error))")
            return false
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? IOError { return "\(error.description)" }
        return String(describing: type(of: error))
    }
}

/// What one upload's response means for its batch.
enum UploadOutcome: Equatable {
    /// The upstream read the batch: who was stored, who refused for good (with why); whether
    /// the rest (transient refusals) should wait before the next try.
    case answered(forwarded: Set<String>, failed: [String: String], transient: Bool)
    case tooLarge
    case encodingRefused
    case linkFailure(String, retryAfter: Double?)

    /// PS3.4 failure reasons worth another try: out of resources, processing failure.
    static let transientReasons: Set<Int> = [0xA700, 0x0110]

    static func judge(status: Int, body: [UInt8], retryAfter: Double?, batch: EdgeSpool.Batch) -> UploadOutcome {
        switch status {
        case 413: return .tooLarge
        case 415: return .encodingRefused
        case 401: return .linkFailure("the upstream refuses the site token (401)", retryAfter: nil)
        case 429, 500...599: return .linkFailure("the upstream is busy or failing (HTTP \(status))", retryAfter: retryAfter)
        default: break
        }
        let reply = try? StowReply(json: body)
        guard let reply, !(reply.stored.isEmpty && reply.failed.isEmpty) else {
            // An error with no per-instance answer (400, 403, 404): every instance refused.
            let code = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]).flatMap { ($0["error"] as? [String: Any])?["code"] as? String }
            let reason = "upstream answered HTTP \(status)\(code.map { " (\($0))" } ?? "")"
            guard (400..<500).contains(status) else { return .linkFailure(reason, retryAfter: retryAfter) }
            return .answered(forwarded: [], failed: Dictionary(uniqueKeysWithValues: batch.items.map { ($0.sop, reason) }), transient: false)
        }
        var failed: [String: String] = [:]
        var transient = false
        for item in reply.failed {
            guard let sop = item.sopInstanceUID else { continue }
            if transientReasons.contains(Int(item.reason)) {
                transient = true
            } else {
                failed[sop] = String(format: "0x%04X %@", item.reason, item.comment ?? "")
            }
        }
        return .answered(forwarded: Set(reply.stored.map(\.sopInstanceUID)), failed: failed, transient: transient)
    }
}

/// The link's shared state across upload lanes: backoff after failures, batch size, compression.
final class LinkState: Sendable {
    private struct State {
        var failures = 0
        var resumeAt = 0.0
        var batchBytes: Int
        var compress = true
        var committing: Set<String> = []
    }
    private let state: NIOLockedValueBox<State>
    private let backoff: (first: Double, last: Double)

    init(backoff: (first: Double, last: Double), batchBytes: Int) {
        self.backoff = backoff
        state = NIOLockedValueBox(State(batchBytes: batchBytes))
    }

    /// Seconds to wait before the next upload, or nil when the link is healthy.
    func pause() -> Double? {
        state.withLockedValue { state in state.failures == 0 ? nil : state.resumeAt - Date().timeIntervalSince1970 }
    }

    /// The pause for a transient refusal: the current backoff step.
    func nextPause() -> Double {
        state.withLockedValue { state in min(backoff.last, backoff.first * pow(2, Double(state.failures))) }
    }

    /// Records a failure; returns the pause before the next try.
    func failed(retryAfter: Double?) -> Double {
        state.withLockedValue { state in
            let pause = max(retryAfter ?? 0, min(backoff.last, backoff.first * pow(2, Double(state.failures))))
            state.failures += 1
            state.resumeAt = max(state.resumeAt, Date().timeIntervalSince1970 + pause)
            return pause
        }
    }

    /// False when another lane is committing the study already.
    func beginCommit(_ study: String) -> Bool { state.withLockedValue { $0.committing.insert(study).inserted } }
    func endCommit(_ study: String) { state.withLockedValue { _ = $0.committing.remove(study) } }

    func succeeded() { state.withLockedValue { $0.failures = 0; $0.resumeAt = 0 } }
    var batchBytes: Int { state.withLockedValue { $0.batchBytes } }
    var compress: Bool { state.withLockedValue { $0.compress } }
    func shrinkBatches(below bytes: Int) { state.withLockedValue { $0.batchBytes = max(1, min($0.batchBytes, bytes / 2)) } }
    func stopCompressing() { state.withLockedValue { $0.compress = false } }
}

/// A multipart/related body of a batch's spooled files, compressed when asked.
struct UploadBody: Sendable {
    var bytes: [UInt8]
    var boundary: String
    var compressed: Bool

    /// Reads the files and compresses on NIO's blocking pool (file reads block).
    static func make(_ batch: EdgeSpool.Batch, compress level: Int?) async throws -> UploadBody {
        try await NIOThreadPool.singleton.runIfActive {
            let boundary = "radgrid-edge-\(UUID().uuidString)"
            var writer = MultipartWriter(boundary: boundary)
            for item in batch.items {
                guard let data = FileManager.default.contents(atPath: item.path) else { throw EdgeError(.spool, "cannot read a spooled file") }
                writer.append(Array(data), contentType: "application/dicom")
            }
            let plain = writer.finish()
            if let level { return UploadBody(bytes: try Zstd.compress(plain, level: level, checksum: true), boundary: boundary, compressed: true) }
            return UploadBody(bytes: plain, boundary: boundary, compressed: false)
        }
    }
}

/// A shared bandwidth cap: each chunk waits for its slot on the pipe.
actor Throttle {
    let bytesPerSecond: Double
    private var nextFree = ContinuousClock.now
    private let clock = ContinuousClock()

    init(bytesPerSecond: Double) { self.bytesPerSecond = bytesPerSecond }

    /// The instant `bytes` may go: after every chunk booked before it.
    func book(_ bytes: Int) -> ContinuousClock.Instant {
        let start = max(clock.now, nextFree)
        nextFree = start + .seconds(Double(bytes) / bytesPerSecond)
        return start
    }
}

/// A body as a sequence of 64 KiB chunks, each sent when the throttle allows.
struct ThrottledBytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    let throttle: Throttle?

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: [UInt8]
        let throttle: Throttle?
        var offset = 0

        mutating func next() async throws -> ByteBuffer? {
            guard offset < bytes.count else { return nil }
            let end = Swift.min(bytes.count, offset + 65_536)
            if let throttle {
                let at = await throttle.book(end - offset)
                try await Task.sleep(until: at, clock: .continuous)
            }
            defer { offset = end }
            return ByteBuffer(bytes: bytes[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes, throttle: throttle) }
}
