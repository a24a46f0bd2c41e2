import Crypto
import DICOMWeb
import Foundation
import GridContract
import Hummingbird
import Logging
import RadGridCore
import Telemetry

/// The edge's HTTP side, for the hospital's network: the same STOW-RS paths as the central
/// gateway, answered from the spool.
///
/// - `POST /studies`, `POST /studies/{uid}` (`?priority=`): spooled durably before the answer;
///   503 with `Retry-After` when the spool is full.
/// - `POST /studies/{uid}/commit`: the study is complete; it is forwarded and committed upstream.
/// - `GET /status`: the spool (as `radgridctl edge status --json`).
/// - `GET /health`, `GET /metrics`.
///
/// Senders authenticate with the site's bearer token (the one the edge uses upstream).
public enum EdgeHTTP {
    public struct Settings: Sendable {
        public var host = "0.0.0.0"
        public var port = 8105
        public var maxRequestBytes = 1 << 30
        /// Seconds a refused sender is asked to wait.
        public var retryAfterSeconds = 30
        public init() {}
    }

    public static func make(intake: EdgeIntake, token: String, settings: Settings, logger: Logger,
                            onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let handler = Handler(intake: intake, tokenDigest: Array(SHA256.hash(data: Array(token.utf8))), settings: settings, logger: logger)
        let router = Router(context: BasicRequestContext.self)
        router.post("/studies") { request, _ in await handler.respond { try await handler.stow(request, expectedStudy: nil) } }
        router.post("/studies/:uid") { request, context in
            await handler.respond { try await handler.stow(request, expectedStudy: context.parameters.get("uid") ?? "") }
        }
        router.post("/studies/:uid/commit") { request, context in
            await handler.respond { try await handler.commit(request, study: context.parameters.get("uid") ?? "") }
        }
        router.get("/status") { _, _ in
            await handler.respond {
                let status = try await intake.spool.status()
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: status.json())))
            }
        }
        router.get("/health") { _, _ in
            await handler.respond {
                _ = try await intake.spool.status()
                return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            }
        }
        Telemetry.addRoute(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "radgrid-edge"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? settings.port) },
            logger: logger
        )
    }

    struct Handler: Sendable {
        let intake: EdgeIntake
        let tokenDigest: [UInt8]
        let settings: Settings
        let logger: Logger

        func respond(_ body: () async throws -> Response) async -> Response {
            do {
                return try await body()
            } catch let error as GatewayError {
                return Self.error(status: error.status, code: error.code, message: error.message)
            } catch let error as EdgeError {
                var response = Self.error(status: error.codeValue == .spoolFull ? 503 : 500, code: error.code, message: error.message)
                if error.codeValue == .spoolFull { response.headers[.retryAfter] = String(settings.retryAfterSeconds) }
                return response
            } catch let error as ContractError {
                return Self.error(status: 400, code: error.code, message: error.message)
            } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
                return Self.error(status: 413, code: "gateway.tooLarge", message: "request body is above the limit of \(settings.maxRequestBytes) bytes")
            } catch {
                return Self.error(status: 500, code: "edge.internal", message: "internal error")
            }
        }

        static func error(status: Int, code: String, message: String) -> Response {
            let body = (try? JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": message]], options: [.sortedKeys])) ?? Data()
            return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }

        /// The site token, compared as digests (constant time in the token's content).
        func authenticate(_ request: Request) throws {
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
                throw GatewayError.unauthorized("a bearer token is required")
            }
            let presented = Array(SHA256.hash(data: Array(header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces).utf8)))
            var difference: UInt8 = 0
            for (a, b) in zip(presented, tokenDigest) { difference |= a ^ b }
            guard difference == 0 else { throw GatewayError.unauthorized("the bearer token is not valid") }
        }

        func stow(_ request: Request, expectedStudy text: String?) async throws -> Response {
            try authenticate(request)
            var priority = Priority.routine
            if let requested = request.uri.queryParameters.get("priority") {
                guard let parsed = Priority(rawValue: String(requested)) else { throw GatewayError.badRequest("priority must be stat, urgent, routine or bulk") }
                priority = parsed
            }
            let expectedStudy = try text.map { try StudyUID($0) }
            // Full already: say so before reading the body.
            if intake.spool.bytesHeld >= intake.spool.settings.limitBytes {
                throw EdgeError(.spoolFull, "the spool is full; the upstream is behind")
            }
            let boundary = try MultipartRelated.boundary(fromContentType: request.headers[.contentType])
            // Split as it streams, each part capped before it is kept (the same reader as the centre's).
            let body = try await SpooledStowBody.receive(request.body, boundary: boundary, zstd: false,
                                                         limits: .init(maxRequestBytes: settings.maxRequestBytes, maxPartBytes: intake.maxInstanceBytes),
                                                         directory: intake.spool.directory + "/tmp")
            guard !body.parts.isEmpty else { throw GatewayError.malformedMultipart("the request has no parts") }
            var response = StowResponse(retrieveURL: nil)
            var spoolFull: EdgeError?
            var slice: [[UInt8]] = []
            var sliceBytes = 0
            func spoolSlice() async {
                guard !slice.isEmpty else { return }
                for outcome in await intake.accept(slice, priority: priority, expectedStudy: expectedStudy) {
                    switch outcome {
                    case .stored(_, let sop, let sopClass):
                        response.stored.append(.init(sopClassUID: sopClass, sopInstanceUID: sop, retrieveURL: nil))
                    case .refused(let sopClass, let sop, let reason, let error):
                        if error.codeValue == .spoolFull { spoolFull = error }
                        response.failed.append(.init(sopClassUID: sopClass, sopInstanceUID: sop, reason: reason.rawValue, comment: "\(error.code): \(error.message)"))
                    }
                }
                slice = []
                sliceBytes = 0
            }
            for part in body.parts {
                if let type = part.contentType, !type.lowercased().hasPrefix("application/dicom") {
                    response.failed.append(.init(sopClassUID: nil, sopInstanceUID: nil, reason: EdgeIntake.Reason.cannotUnderstand.rawValue, comment: "part is not application/dicom"))
                    continue
                }
                if part.tooLarge {
                    response.failed.append(.init(sopClassUID: nil, sopInstanceUID: nil, reason: EdgeIntake.Reason.outOfResources.rawValue,
                                                 comment: "edge.invalidInstance: instance is above the limit of \(intake.maxInstanceBytes) bytes"))
                    continue
                }
                slice.append(try await body.read(part))
                sliceBytes += part.length
                // One spool transaction per slice: memory stays bounded whatever the upload's size.
                if sliceBytes >= 8 << 20 { await spoolSlice() }
            }
            await spoolSlice()
            // Nothing kept because the spool is full: the whole request is to be retried.
            if let spoolFull, response.stored.isEmpty { throw spoolFull }
            return Response(status: .init(code: response.status), headers: [.contentType: "application/dicom+json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: response.json())))
        }

        func commit(_ request: Request, study text: String) async throws -> Response {
            try authenticate(request)
            let study = try StudyUID(text)
            guard try await intake.spool.knows(study) else { throw GatewayError.notFound("no such study in the spool") }
            try await intake.spool.markComplete([study], reason: "explicit")
            let data = try JSONSerialization.data(withJSONObject: ["study": study.rawValue, "outcome": "complete"], options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}
