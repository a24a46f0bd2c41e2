import Accounts
import BlobSealing
import CriticalResults
import Foundation
import GridContract
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QualityControl
import RadGridCore
import RedisClient
import Routing
import ServerTLS
import ServiceLifecycle
import StudyStore
import Synchronization
import Telemetry

/// Each request's context: Hummingbird's core plus the client's address (sign-in throttling).
public struct PortalRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The experts' portal (`radgrid portal`): sign-in, the worklist API, live offers, DICOMweb
/// for viewers, reports and the reading page.
///
/// - `POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/me`
/// - `GET /api/v1/me/cases`, `GET /api/v1/cases/{id}`, `POST /api/v1/cases/{id}/accept|decline|release`
/// - `GET|POST /api/v1/cases/{id}/report`, `GET /api/v1/events` (server-sent events)
/// - `/dicomweb/...` QIDO-RS and WADO-RS (see `DICOMweb`)
/// - `GET /` and `/app/*`: the reading page; `GET /health`, `GET /metrics`
public enum PortalApplication {
    /// The portal's services: the HTTP server and the router-event reader behind the live
    /// streams. `onListening` receives the bound port (useful with port 0). `blobKeys` opens
    /// sealed instances.
    public static func services(client: RedisClient, prefix: KeyPrefix, configuration: PortalConfiguration, logger: Logger, blobKeys: BlobKeyring? = nil,
                                onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> [any Service] {
        let scheme = configuration.tls == nil ? "http" : "https"
        let store = StudyStore(client: client, prefix: prefix, logger: logger, keyring: blobKeys)
        let router = ExpertRouter(redis: client, prefix: prefix, config: configuration.routing, actor: "portal", logger: logger)
        let images = StudyImages(store: store, configuration: configuration)
        let hub = CaseEventHub(client: client, keys: GridKeys(prefix: prefix), logger: logger)
        let qc = QCStore(client: client, prefix: prefix)
        let secondReads = SecondReads(store: store, router: router, qc: qc, policy: configuration.qc, logger: logger)
        let access = Access(store: store, router: router, qc: qc)
        let handlers = PortalHandlers(
            accounts: AccountStore(client: client, prefix: prefix, settings: configuration.accounts, logger: logger),
            router: router, store: store, access: access, worklist: Worklist(store: store, router: router, images: images, access: access),
            reports: ReportDesk(store: store, router: router, images: images, secondReads: secondReads, logger: logger,
                                criticalResults: CriticalResultStore(client: client, prefix: prefix)),
            secondReads: secondReads,
            dicomweb: DICOMweb(access: access, images: images, store: store), hub: hub,
            files: try StaticFiles(directory: configuration.publicDirectory), keepAlive: configuration.keepAlive, corsOrigins: Set(configuration.corsOrigins),
            base: ListeningURL("\(scheme)://\(configuration.host):\(configuration.port)"), logger: logger)
        let app = Application(
            router: handlers.routes(),
            server: try ServerTLS.server(configuration.tls),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "radgrid-portal"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                handlers.base.set("\(scheme)://\(configuration.host):\(port)")
                await onListening(port)
            },
            logger: logger
        )
        // A ServiceGroup shuts down in reverse order: the event reader first, which ends every
        // open event stream, so the HTTP server's graceful shutdown does not wait on them.
        return [app, hub]
    }
}

struct PortalHandlers: Sendable {
    let accounts: AccountStore
    let router: ExpertRouter
    let store: StudyStore
    let access: Access
    let worklist: Worklist
    let reports: ReportDesk
    let secondReads: SecondReads
    let dicomweb: DICOMweb
    let hub: CaseEventHub
    let files: StaticFiles
    let keepAlive: Duration
    let corsOrigins: Set<String>
    let base: ListeningURL
    let logger: Logger

    typealias Context = PortalRequestContext

    func routes() -> Router<Context> {
        let router = Router(context: Context.self)
        router.add(middleware: SecurityHeaders())
        if !corsOrigins.isEmpty { router.add(middleware: ViewerCORS(origins: corsOrigins)) }
        router.post("/api/v1/login") { request, context in await respond { try await login(request, context) } }
        router.post("/api/v1/logout") { request, _ in
            await respond {
                let session = try await authenticate(request)
                try await accounts.signOut(token: request.bearerToken ?? "", principal: session.principal)
                return Response(status: .noContent)
            }
        }
        router.get("/api/v1/me") { request, _ in await respond { try me(try await authenticate(request)) } }
        router.get("/api/v1/me/cases") { request, _ in
            await respond {
                let session = try await authenticate(request)
                guard let expert = session.principal.expert, session.principal.role == .expert else { return try Reply.json(["cases": [Any](), "now_ms": WallClock.nowMilliseconds()]) }
                return try Reply.json(["cases": try await worklist.cases(for: expert), "now_ms": WallClock.nowMilliseconds()])
            }
        }
        router.get("/api/v1/events") { request, _ in await respond { try await events(try await authenticate(request)) } }
        router.get("/api/v1/cases/:id") { request, context in
            await respond { try await caseDetail(try await authenticate(request), id: context.parameters.get("id") ?? "") }
        }
        for action in ["accept", "decline", "release"] {
            router.post("/api/v1/cases/:id/\(action)") { request, context in
                await respond { try await act(action, request, try await authenticate(request), id: context.parameters.get("id") ?? "") }
            }
        }
        router.get("/api/v1/cases/:id/report") { request, context in
            await respond {
                let session = try await authenticate(request)
                let id = context.parameters.get("id") ?? ""
                let uid: StudyUID
                do {
                    let info = try await access.caseInfo(id, for: session.principal)
                    if info.kind == .review && session.principal.role == .expert {
                        throw PortalError.forbidden("a second read is blinded to the first report until it is scored")
                    }
                    uid = try await caseStudy(info, session.principal, purpose: .images).uid
                } catch let refused as PortalError where refused.status == 403 {
                    // The signer keeps reading their own report after the case closed.
                    guard let caseID = try? CaseID(id), let study = try await store.study(forCase: caseID),
                          let report = try await store.report(study), report.author == session.principal.expert, session.principal.role == .expert else { throw refused }
                    uid = study
                }
                guard let report = try await store.report(uid) else { throw PortalError.notFound("no report yet") }
                try await access.recordView(uid, by: session.principal, what: "via=api;what=report;case=\(id)")
                return try Reply.json(try ReportView.object(report))
            }
        }
        router.post("/api/v1/cases/:id/report") { request, context in
            await respond {
                let session = try await authenticate(request)
                let id = context.parameters.get("id") ?? ""
                let body = try await request.jsonObject()
                let info: CaseInfo
                if body["addendum"] != nil {
                    // The case is closed after signing: the signer's own report decides.
                    guard (try? CaseID(id)) != nil, let found = try await self.router.caseInfo(id) else { throw PortalError.notFound("no such case") }
                    info = found
                } else {
                    info = try await access.caseInfo(id, for: session.principal)
                }
                guard let caseID = try? CaseID(info.id), let uid = try await store.study(forCase: caseID), let record = try await store.record(uid) else {
                    throw PortalError.notFound("the case's study is not known")
                }
                let report = try await reports.write(caseInfo: info, study: record, principal: session.principal, body: body)
                return try Reply.json(["report": try ReportView.object(report)])
            }
        }
        addQualityControl(to: router)
        addDICOMweb(to: router)
        Telemetry.addRoute(to: router)
        router.get("/health") { _, _ in
            await respond {
                _ = try await store.client.send("PING")
                return Reply.bytes(Array("ok\n".utf8), type: "text/plain")
            }
        }
        router.get("/") { _, _ in files.response(for: "index.html") }
        router.get("/app/**") { request, _ in files.response(for: String(request.uri.path.dropFirst("/app/".count))) }
        return router
    }

    // MARK: Sign-in and session

    func login(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await request.jsonObject(limit: 16 << 10)
        guard let user = body["user"] as? String, let password = body["password"] as? String, !user.isEmpty, !password.isEmpty else {
            throw PortalError.badRequest("user and password are required")
        }
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        do {
            let (token, session) = try await accounts.signIn(user: user, password: password, address: address)
            var object = principalObject(session)
            object["token"] = token
            return try Reply.json(object)
        } catch let error as AccountError {
            switch error.codeValue {
            case .throttled: throw PortalError(429, "portal.throttled", error.message, retryAfterSeconds: error.retryAfterSeconds)
            case .credentialsLapsed: throw PortalError(403, "portal.credentialsLapsed", error.message)
            default: throw PortalError(401, "portal.badCredentials", "user or password is wrong")
            }
        }
    }

    func authenticate(_ request: Request) async throws -> Session {
        guard let token = request.bearerToken else { throw PortalError.unauthorized("sign in: a bearer token is required") }
        guard let session = try await accounts.session(token: token) else { throw PortalError.unauthorized("the session has ended or was revoked; sign in again") }
        return session
    }

    func principalObject(_ session: Session) -> [String: Any] {
        let p = session.principal
        return ["user": p.user, "role": p.role.rawValue, "expert": p.expert ?? NSNull(), "site": p.site ?? NSNull(), "name": p.name,
                "expires_at": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(session.expiresAt) / 1000)),
                "expires_ms": session.expiresAt]
    }

    func me(_ session: Session) throws -> Response { try Reply.json(principalObject(session)) }

    // MARK: Cases

    func caseStudy(_ info: CaseInfo, _ principal: Principal, purpose: Access.Purpose) async throws -> StudyRecord {
        guard let uid = try await access.studyUIDs(for: [info]).first ?? nil else { throw PortalError.notFound("the case's study is not known") }
        return try await access.study(uid, for: principal, purpose: purpose)
    }

    func caseDetail(_ session: Session, id: String) async throws -> Response {
        let info = try await access.caseInfo(id, for: session.principal)
        let record = try await caseStudy(info, session.principal, purpose: .summary)
        let withPatient = !(session.principal.role == .expert && info.state != "accepted")
        var detail = try await worklist.detail(info, record: record, withPatient: withPatient)
        if session.principal.role == .qc || session.principal.role == .admin, let explanation = try await router.explain(caseID: info.id) {
            detail["routing"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(explanation))
        }
        if withPatient { try await access.recordView(record.uid, by: session.principal, what: "via=api;what=case;case=\(info.id)") }
        return try Reply.json(detail)
    }

    func act(_ action: String, _ request: Request, _ session: Session, id: String) async throws -> Response {
        guard session.principal.role == .expert, let expert = session.principal.expert else { throw PortalError.forbidden("only experts act on cases") }
        let info = try await access.caseInfo(id, for: session.principal)
        let body = try await request.jsonObject(limit: 16 << 10)
        var reason = DeclineReason.other
        if let text = body["reason"] as? String {
            guard let parsed = DeclineReason(rawValue: text) else {
                throw PortalError.badRequest("reason must be one of \(DeclineReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            reason = parsed
        }
        do {
            switch action {
            case "accept": try await router.accept(caseID: info.id, expert: expert)
            case "decline":
                guard info.state == "offered" else { throw PortalError.state("only an offered case can be declined; release an accepted one") }
                _ = try await router.decline(caseID: info.id, expert: expert, reason: reason)
            default:
                guard info.state == "accepted" else { throw PortalError.state("only an accepted case can be released; decline an offer") }
                _ = try await router.release(caseID: info.id, expert: expert, reason: reason)
            }
        } catch let error as RoutingError {
            throw error.code == "routing.notHolder" ? PortalError.forbidden("the case is not offered to or held by you") : PortalError.state(error.message)
        }
        let after = try await router.caseInfo(info.id)
        var object: [String: Any] = ["case": info.id, "action": action]
        if let after, after.expert == expert { object["state"] = after.state } else { object["state"] = "gone" }
        return try Reply.json(object)
    }

    // MARK: Live events

    func events(_ session: Session) throws -> Response {
        guard session.principal.role == .expert, let expert = session.principal.expert else { throw PortalError.forbidden("event streams are for experts") }
        let subscription = hub.subscribe(expert: expert)
        let keepAlive = self.keepAlive
        let body = ResponseBody { writer in
            let (merged, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(512))
            let forward = Task {
                for await message in subscription { continuation.yield("event: \(message.event)\ndata: \(message.data)\n\n") }
                continuation.finish()
            }
            let beat = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: keepAlive)
                    continuation.yield(": keepalive\n\n")
                }
            }
            defer {
                forward.cancel()
                beat.cancel()
            }
            try await writer.write(ByteBuffer(string: "retry: 3000\n: connected\n\n"))
            for await chunk in merged { try await writer.write(ByteBuffer(string: chunk)) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"], body: body)
    }

    // MARK: DICOMweb

    func addDICOMweb(to router: Router<Context>) {
        @Sendable func uid<T: GridIdentifier>(_ context: Context, _ name: String, _ type: T.Type) throws -> T {
            do { return try T(context.parameters.get(name) ?? "") } catch { throw PortalError.badRequest(error.message) }
        }
        let web = dicomweb
        router.get("/dicomweb/studies") { request, _ in
            await respond { try await web.searchStudies(request, principal: try await authenticate(request).principal, baseURL: base.text) }
        }
        router.get("/dicomweb/studies/:study") { request, context in
            await respond { try await web.retrieve(study: try uid(context, "study", StudyUID.self), series: nil, sop: nil, principal: try await authenticate(request).principal) }
        }
        router.get("/dicomweb/studies/:study/metadata") { request, context in
            await respond { try await web.metadata(study: try uid(context, "study", StudyUID.self), series: nil, sop: nil, principal: try await authenticate(request).principal, baseURL: base.text) }
        }
        router.get("/dicomweb/studies/:study/series") { request, context in
            await respond { try await web.searchSeries(request, study: try uid(context, "study", StudyUID.self), principal: try await authenticate(request).principal, baseURL: base.text) }
        }
        router.get("/dicomweb/studies/:study/instances") { request, context in
            await respond { try await web.searchInstances(request, study: try uid(context, "study", StudyUID.self), series: nil, principal: try await authenticate(request).principal, baseURL: base.text) }
        }
        router.get("/dicomweb/studies/:study/series/:series") { request, context in
            await respond {
                try await web.retrieve(study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self), sop: nil,
                                       principal: try await authenticate(request).principal)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/metadata") { request, context in
            await respond {
                try await web.metadata(study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self), sop: nil,
                                       principal: try await authenticate(request).principal, baseURL: base.text)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/thumbnail") { request, context in
            await respond {
                try await web.thumbnail(study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self), principal: try await authenticate(request).principal)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/instances") { request, context in
            await respond {
                try await web.searchInstances(request, study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self),
                                              principal: try await authenticate(request).principal, baseURL: base.text)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/instances/:sop") { request, context in
            await respond {
                try await web.retrieve(study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self),
                                       sop: try uid(context, "sop", SOPInstanceUID.self), principal: try await authenticate(request).principal)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/instances/:sop/metadata") { request, context in
            await respond {
                try await web.metadata(study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self),
                                       sop: try uid(context, "sop", SOPInstanceUID.self), principal: try await authenticate(request).principal, baseURL: base.text)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/instances/:sop/rendered") { request, context in
            await respond {
                try await web.rendered(request, study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self),
                                       sop: try uid(context, "sop", SOPInstanceUID.self), frame: 1, principal: try await authenticate(request).principal)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/instances/:sop/frames/:frames") { request, context in
            await respond {
                try await web.frames(study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self),
                                     sop: try uid(context, "sop", SOPInstanceUID.self), list: context.parameters.get("frames") ?? "",
                                     principal: try await authenticate(request).principal)
            }
        }
        router.get("/dicomweb/studies/:study/series/:series/instances/:sop/frames/:frames/rendered") { request, context in
            await respond {
                guard let frame = Int(context.parameters.get("frames") ?? ""), frame >= 1 else { throw PortalError.badRequest("frame must be a number from 1") }
                return try await web.rendered(request, study: try uid(context, "study", StudyUID.self), series: try uid(context, "series", SeriesUID.self),
                                              sop: try uid(context, "sop", SOPInstanceUID.self), frame: frame, principal: try await authenticate(request).principal)
            }
        }
    }

    // MARK: Errors

    /// Maps typed errors to 4xx/5xx with `{"error": {"code", "message"}}`.
    func respond(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as PortalError {
            return Reply.error(error)
        } catch let error as StudyStoreError {
            let status = switch error.codeValue {
            case .unknown: 404
            case .notApplicable: 409
            case .contended: 503
            case .invalidInput: 400
            default: 500
            }
            return Reply.error(PortalError(status, error.code, error.message))
        } catch let error as ContractError {
            return Reply.error(PortalError(400, error.code, error.message))
        } catch let error as RedisError {
            logger.error("redis failure in portal", metadata: ["error": "\(error.code)"])
            return Reply.error(PortalError(503, error.code, "storage is unavailable, retry later"))
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return Reply.error(PortalError(413, "portal.tooLarge", "the request body is too large"))
        } catch let error as any CodedError {
            logger.warning("portal request failed", metadata: ["code": "\(error.code)"])
            return Reply.error(PortalError(422, error.code, error.message))
        } catch {
            logger.error("portal request failed", metadata: ["type": "\(type(of: error))"])
            return Reply.error(PortalError(500, "portal.internal", "internal error"))
        }
    }
}

/// Headers every portal response carries: the page loads nothing from elsewhere and cannot be framed.
struct SecurityHeaders: RouterMiddleware {
    typealias Context = PortalRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return response
    }
}

/// Lets DICOMweb viewers served from the configured origins (OHIF and the like) call
/// `/dicomweb` from the browser with a bearer token: the origin is echoed only when listed,
/// and preflight requests are answered here, before routing.
struct ViewerCORS: RouterMiddleware {
    typealias Context = PortalRequestContext
    let origins: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/dicomweb"), let origin = request.headers[.origin], origins.contains(origin) else {
            return try await next(request, context)
        }
        var response: Response
        if request.method == .options {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Accept, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        return response
    }
}

/// The reading page's files, read once at start (a handful of small files): nothing on disk
/// is reached by a request path, so no path can climb out of the folder.
struct StaticFiles: Sendable {
    let files: [String: (type: String, body: [UInt8])]

    init(directory: String?) throws {
        let folder: URL
        if let directory {
            folder = URL(fileURLWithPath: directory)
        } else if let bundled = Bundle.module.url(forResource: "Public", withExtension: nil) {
            folder = bundled
        } else {
            throw PortalError(500, "portal.noPage", "the reading page's files are missing from the build")
        }
        var files: [String: (String, [UInt8])] = [:]
        let names = (try? FileManager.default.subpathsOfDirectory(atPath: folder.path)) ?? []
        for name in names {
            var isDirectory: ObjCBool = false
            let path = folder.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            files[name] = (Self.type(of: name), Array(data))
        }
        self.files = files
    }

    static func type(of name: String) -> String {
        switch name.split(separator: ".").last.map(String.init) ?? "" {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "json": "application/json"
        case "ico": "image/x-icon"
        default: "application/octet-stream"
        }
    }

    func response(for name: String) -> Response {
        guard let file = files[name] else { return Reply.error(PortalError.notFound("no such page")) }
        return Reply.bytes(file.body, type: file.type, cache: "no-cache")
    }
}
