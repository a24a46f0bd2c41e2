import DICOMWeb
import Audit
import BlobSealing
import CriticalResults
import Foundation
import GridContract
import HTTPTypes
import Hummingbird
import Logging
import QualityControl
import Routing
import ServerTLS
import RadGridCore
import RedisClient
import StudyLifecycle
import StudyStore
import Synchronization
import Telemetry
import Zstd

/// The edge gateway: DICOMweb STOW-RS for hospitals' PACS, with per-site bearer tokens,
/// size limits and backpressure.
///
/// - `POST /studies`, `POST /studies/{StudyInstanceUID}` — `multipart/related;
///   type="application/dicom"`; `?priority=stat|urgent|routine|bulk` (default routine).
/// - `POST /studies/{uid}/commit` — the study is complete.
/// - `GET /studies/{uid}` — the study's state, for its own site.
/// - `GET /studies/{uid}/report` — the signed report: JSON, or a DICOM Basic Text SR with `Accept: application/dicom`.
/// - `POST /studies/{uid}/dispute` — the site disputes the signed report: QC reads it again.
/// - `POST /studies/{uid}/critical/ack` — the site acknowledges the study's critical result (CriticalAck.swift).
/// - `GET /health`, `GET /metrics` (Prometheus).
public struct GatewayConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8104
    /// Largest request body accepted (413 above it).
    public var maxRequestBytes: Int = 2 << 30
    /// Uploads received at once, all sites together and per site; beyond them 429 with
    /// `Retry-After` (each upload holds about one instance and one store slice in memory).
    public var maxConcurrentUploads = 8
    public var maxConcurrentUploadsPerSite = 4
    /// Where upload bodies are spooled while they arrive (files unlinked at once); the
    /// system's temporary directory when nil.
    public var spoolDirectory: String?
    public var intake = InstanceIntake.Limits()
    public var backpressure = Backpressure.Thresholds()
    /// Base URL used in RetrieveURL attributes; derived from the host and the bound port when nil.
    public var publicBaseURL: String?
    /// HTTPS (and, with a client CA, mutual TLS); plain HTTP when nil.
    public var tls: ServerTLS?
    /// The study lifecycle's timings (stable age).
    public var lifecycle = LifecycleSettings()
    /// QC policy for disputes (`Ops/qc.json`).
    public var qc: QCPolicy = .standard
    public init() {}
}

public enum GatewayApplication {
    /// Builds the HTTP application (a swift-service-lifecycle `Service`).
    /// `onListening` receives the bound port (useful with port 0). With `blobKeys`, every
    /// instance is sealed before it reaches Redis.
    public static func make(
        client: RedisClient, prefix: KeyPrefix, configuration: GatewayConfiguration, logger: Logger, blobKeys: BlobKeyring? = nil,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let store = StudyStore(client: client, prefix: prefix, keyring: blobKeys)
        let scheme = configuration.tls == nil ? "http" : "https"
        let baseURL = ListeningURL(configuration.publicBaseURL ?? "\(scheme)://\(configuration.host):\(configuration.port)")
        let handler = StowHandler(
            store: store, tokens: SiteTokens(client: client, prefix: prefix),
            intake: InstanceIntake(store: store, limits: configuration.intake, logger: logger),
            backpressure: Backpressure(client: client, store: store, thresholds: configuration.backpressure),
            maxRequestBytes: configuration.maxRequestBytes,
            uploads: UploadSlots(total: configuration.maxConcurrentUploads, perSite: configuration.maxConcurrentUploadsPerSite),
            policies: SitePolicies(client: client, prefix: prefix),
            spoolDirectory: configuration.spoolDirectory ?? NSTemporaryDirectory(),
            machine: StudyStateMachine(settings: configuration.lifecycle),
            base: baseURL, logger: logger,
            critical: CriticalResultStore(client: client, prefix: prefix)
        )
        let router = Router(context: BasicRequestContext.self)
        router.post("/studies") { request, context in await handler.respond { try await handler.stow(request, expectedStudy: nil) } }
        router.post("/studies/:uid") { request, context in
            let uid = context.parameters.get("uid") ?? ""
            return await handler.respond { try await handler.stow(request, expectedStudy: uid) }
        }
        router.post("/studies/:uid/commit") { request, context in
            let uid = context.parameters.get("uid") ?? ""
            return await handler.respond { try await handler.commit(request, study: uid) }
        }
        router.get("/studies/:uid/report") { request, context in
            let uid = context.parameters.get("uid") ?? ""
            return await handler.respond { try await handler.report(request, study: uid) }
        }
        let secondReads = SecondReads(store: store, router: ExpertRouter(redis: client, prefix: prefix, actor: "gateway", logger: logger),
                                      qc: QCStore(client: client, prefix: prefix), policy: configuration.qc, logger: logger)
        router.post("/studies/:uid/dispute") { request, context in
            let uid = context.parameters.get("uid") ?? ""
            return await handler.respond { try await handler.dispute(request, study: uid, secondReads: secondReads) }
        }
        // Critical results: the site's acknowledgement (CriticalAck.swift).
        router.post("/studies/:uid/critical/ack") { request, context in
            let uid = context.parameters.get("uid") ?? ""
            return await handler.respond { try await handler.acknowledgeCritical(request, study: uid) }
        }
        router.get("/studies/:uid") { request, context in
            let uid = context.parameters.get("uid") ?? ""
            return await handler.respond { try await handler.status(request, study: uid) }
        }
        Telemetry.addRoute(to: router)
        router.get("/health") { _, _ in
            await handler.respond {
                _ = try await client.send("PING")
                return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            }
        }
        return Application(
            router: router,
            server: try ServerTLS.server(configuration.tls),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "radgrid-gateway"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                if configuration.publicBaseURL == nil { baseURL.set("\(scheme)://\(configuration.host):\(port)") }
                await onListening(port)
            },
            logger: logger
        )
    }
}

/// The request handlers, kept apart from routing so they read top to bottom.
struct StowHandler: Sendable {
    let store: StudyStore
    let tokens: SiteTokens
    let intake: InstanceIntake
    let backpressure: Backpressure
    let maxRequestBytes: Int
    let uploads: UploadSlots
    let policies: SitePolicies
    let spoolDirectory: String
    let machine: StudyStateMachine
    let base: ListeningURL
    let logger: Logger
    /// Critical results the site acknowledges (CriticalAck.swift).
    let critical: CriticalResultStore

    var baseURL: String { base.text }

    /// Maps typed errors to 4xx/5xx with a JSON body `{"error": {"code", "message"}}`.
    func respond(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as GatewayError {
            var response = Self.error(status: error.status, code: error.code, message: error.message)
            if error.status == 429 { response.headers[.retryAfter] = String(error.retryAfterSeconds ?? backpressure.thresholds.retryAfterSeconds) }
            return response
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return Self.error(status: 413, code: "gateway.tooLarge", message: "request body is above the limit of \(maxRequestBytes) bytes")
        } catch let error as StudyStoreError {
            let status = switch error.codeValue {
            case .forbidden: 403
            case .unknown: 404
            case .contended: 503
            default: 400
            }
            return Self.error(status: status, code: error.code, message: error.message)
        } catch let error as ContractError {
            return Self.error(status: 400, code: error.code, message: error.message)
        } catch let error as RedisError {
            logger.error("redis failure in gateway", metadata: ["error": "\(error.code)"])
            return Self.error(status: 503, code: error.code, message: "storage is unavailable, retry later")
        } catch let error as any CodedError {
            return Self.error(status: 500, code: error.code, message: error.message)
        } catch {
            return Self.error(status: 500, code: "gateway.internal", message: "internal error")
        }
    }

    static func error(status: Int, code: String, message: String) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": message]], options: [.sortedKeys])) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    func authenticate(_ request: Request) async throws -> SiteID {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw GatewayError.unauthorized("a bearer token is required")
        }
        guard let site = try await tokens.site(forToken: String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)),
              let id = try? SiteID(site) else {
            throw GatewayError.unauthorized("the bearer token is not valid")
        }
        return id
    }

    func stow(_ request: Request, expectedStudy text: String?) async throws -> Response {
        let site = try await authenticate(request)
        var priority = Priority.routine
        if let requested = request.uri.queryParameters.get("priority") {
            guard let parsed = Priority(rawValue: String(requested)) else { throw GatewayError.badRequest("priority must be stat, urgent, routine or bulk") }
            priority = parsed
        }
        // The site's policy: which priorities it may ask for, how many uploads a minute.
        let policy = try await policies.policy(for: site)
        guard policy.priorities.contains(priority) else {
            throw GatewayError.priorityNotAllowed("site \(site) may not request \(priority.rawValue) (allowed: \(policy.priorities.map(\.rawValue).joined(separator: ", ")))")
        }
        // A consent reference travels with the upload; a site configured to require one sends it.
        let consent = request.headers[Self.consentHeader].map { $0.trimmingCharacters(in: .whitespaces) }
        if let consent, !SitePolicy.validConsentReference(consent) {
            throw GatewayError.badRequest("\(Self.consentHeader) must be 1 to 128 printable ASCII characters")
        }
        if policy.requireConsent, consent == nil {
            throw GatewayError.consentRequired("site \(site) must send a consent reference (header \(Self.consentHeader)) with every upload")
        }
        let expectedStudy = try text.map { try StudyUID($0) }
        // The site's own study under that UID (another site's copy of the UID is another study).
        var openStudy: StudyUID?
        if let expectedStudy { openStudy = try await store.resolve(site: site, study: expectedStudy) }
        try await policies.admitOpenStudies(site: site, policy: policy, priority: priority, into: openStudy)
        try await policies.admitUpload(site: site, policy: policy)
        if let reason = try await backpressure.refusal() { throw GatewayError.busy(reason) }
        let boundary = try MultipartRelated.boundary(fromContentType: request.headers[.contentType])
        let encoding = try BodyEncoding(request.headers[.contentEncoding])
        guard uploads.acquire(site) else { throw GatewayError.busy("too many uploads at once; retry later") }
        defer { uploads.release(site) }
        let limits = SpooledStowBody.Limits(maxRequestBytes: maxRequestBytes, maxPartBytes: intake.limits.maxInstanceBytes)
        let body = try await receive(request, from: site) {
            try await SpooledStowBody.receive(request.body, boundary: boundary, zstd: encoding == .zstd, limits: limits, directory: spoolDirectory)
        }
        guard !body.parts.isEmpty else { throw GatewayError.malformedMultipart("the request has no parts") }

        var response = StowResponse(retrieveURL: expectedStudy.map { "\(baseURL)/studies/\($0)" })
        // Read back and stored a slice at a time, so memory stays bounded by the slice.
        var slice: [[UInt8]] = []
        var sliceBytes = 0
        func storeSlice() async {
            guard !slice.isEmpty else { return }
            for outcome in await intake.ingest(slice, site: site, priority: priority, expectedStudy: expectedStudy, consent: consent) {
                switch outcome {
                case .stored(let header, let sopClass, _):
                    response.stored.append(.init(sopClassUID: sopClass, sopInstanceUID: header.sop.rawValue,
                                                 retrieveURL: "\(baseURL)/studies/\(header.study)/series/\(header.series)/instances/\(header.sop)"))
                case .failed(let sopClass, let sop, let reason, let error):
                    logger.info("instance refused", metadata: ["site": "\(site)", "code": "\(error.code)"])
                    response.failed.append(.init(sopClassUID: sopClass, sopInstanceUID: sop, reason: reason.rawValue, comment: "\(error.code): \(error.message)"))
                }
            }
            slice = []
            sliceBytes = 0
        }
        for part in body.parts {
            if let type = part.contentType, !type.lowercased().hasPrefix("application/dicom") {
                response.failed.append(.init(sopClassUID: nil, sopInstanceUID: nil, reason: InstanceIntake.FailureReason.cannotUnderstand.rawValue, comment: "part is not application/dicom"))
                continue
            }
            if part.tooLarge {
                response.failed.append(.init(sopClassUID: nil, sopInstanceUID: nil, reason: InstanceIntake.FailureReason.outOfResources.rawValue,
                                             comment: "gateway.tooLarge: instance is above the limit of \(intake.limits.maxInstanceBytes) bytes"))
                continue
            }
            let bytes = try await body.read(part)
            slice.append(bytes)
            sliceBytes += bytes.count
            if sliceBytes >= Self.stowSliceBytes { await storeSlice() }
        }
        await storeSlice()
        return Response(status: .init(code: response.status), headers: [.contentType: "application/dicom+json"], body: .init(byteBuffer: ByteBuffer(bytes: response.json())))
    }

    /// The header carrying a site's consent reference for an upload (recorded with the study).
    static let consentHeader = HTTPField.Name("X-Consent-Reference")!

    /// Uncompressed bytes of one upload's instances read back and stored at a time: what one
    /// upload holds in memory beyond the instance being received.
    static let stowSliceBytes = 8 << 20

    /// Receives a body while marking an upload from the site in progress, so a slow
    /// upload's instances are not cut off from their study by the stable-age commit.
    func receive<T: Sendable>(_ request: Request, from site: SiteID, _ read: () async throws -> T) async throws -> T {
        try await store.beginUpload(site: site)
        let keepAlive = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(10))
                try await store.touchUpload(site: site)
            }
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await read())
        } catch {
            result = .failure(error)
        }
        keepAlive.cancel()
        try? await store.endUpload(site: site)
        return try result.get()
    }

    /// A request body's `Content-Encoding`: none, or zstd (the edge gateway compresses on the
    /// wire; decoded as it streams, stopping at the request limit, so a small body cannot
    /// inflate past it).
    enum BodyEncoding: Equatable {
        case identity, zstd

        init(_ header: String?) throws {
            switch header?.lowercased().trimmingCharacters(in: .whitespaces) {
            case nil, "", "identity": self = .identity
            case "zstd": self = .zstd
            default: throw GatewayError.unsupportedMediaType("Content-Encoding must be identity or zstd")
            }
        }
    }

    func commit(_ request: Request, study text: String) async throws -> Response {
        let site = try await authenticate(request)
        let study = try StudyUID(text)
        // The site's own study; another site's answers exactly as a missing one: no answer tells a site what others hold.
        guard let record = try await store.record(site: site, study: study) else { throw GatewayError.notFound("no such study") }
        let outcome = try await store.handle(.commit(reason: "explicit"), study: record.uid, actor: AuditActor(.site, site.rawValue), machine: machine)
        guard case .handled(let decision, let after) = outcome else { throw GatewayError.notFound("no such study") }
        return try json(["study": study.rawValue, "outcome": decision.next == nil ? "alreadyCommitted" : "committed", "instances": after.instances])
    }

    func status(_ request: Request, study text: String) async throws -> Response {
        let site = try await authenticate(request)
        // The site's own study; another site's answers exactly as a missing one: no answer tells a site what others hold.
        guard let record = try await store.record(site: site, study: try StudyUID(text)) else { throw GatewayError.notFound("no such study") }
        var object: [String: Any] = ["study": text, "state": record.state.rawValue, "instances": record.instances,
                                     "committed": record.committed, "priority": record.priority.rawValue, "lateInstances": record.lateInstances,
                                     "consent": record.consentReference != nil]
        if let failure = record.failure { object["reason"] = failure.code }
        return try json(object)
    }

    /// The signed report of one of the site's studies: JSON, or with `Accept: application/dicom`
    /// the same report as a DICOM Basic Text SR. Drafts are the expert's own: 404 until signed.
    func report(_ request: Request, study text: String) async throws -> Response {
        let site = try await authenticate(request)
        // The site's own study; another site's answers exactly as a missing one: no answer tells a site what others hold.
        guard let record = try await store.record(site: site, study: try StudyUID(text)) else { throw GatewayError.notFound("no such study") }
        let study = record.uid
        guard let report = try await store.report(study), report.status != .draft else { throw GatewayError.notFound("the study has no signed report yet") }
        let accept = (request.headers[.accept] ?? "").lowercased()
        let asDICOM = accept.contains("application/dicom") && !accept.contains("json")
        try await store.audit(study).append(actor: AuditActor(.site, site.rawValue), action: "report.fetched", study: study.rawValue,
                                            details: "format=\(asDICOM ? "sr" : "json");sha256=\(report.addenda.last?.hash ?? report.hash)")
        if asDICOM {
            // The SR joins the study as the site knows it (its own StudyInstanceUID).
            let bytes = try ReportDocument.basicTextSR(report, studyInstanceUID: record.studyInstanceUID.rawValue)
            return Response(status: .ok, headers: [.contentType: "application/dicom"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        var object = try report.publicObject()
        if object["study"] != nil { object["study"] = record.studyInstanceUID.rawValue }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The site disputes a signed report of one of its studies: QC reads it again (once; a
    /// dispute of a review already closed is recorded, not reopened).
    func dispute(_ request: Request, study text: String, secondReads: SecondReads) async throws -> Response {
        let site = try await authenticate(request)
        // The site's own study; another site's answers exactly as a missing one: no answer tells a site what others hold.
        guard let record = try await store.record(site: site, study: try StudyUID(text)) else { throw GatewayError.notFound("no such study") }
        guard let report = try await store.report(record.uid), report.status != .draft else { throw GatewayError.notFound("the study has no signed report yet") }
        do {
            let outcome = try await secondReads.dispute(study: record, actor: AuditActor(.site, site.rawValue))
            return try json(["study": text, "outcome": outcome])
        } catch let error as QCError {
            throw GatewayError(code: error.code, message: error.message, status: error.code == "qc.disputesOff" ? 403 : 409)
        }
    }

    func json(_ object: [String: Any]) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
