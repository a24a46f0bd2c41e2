import Accounts
import Foundation
import ServerTLS
import QualityControl
import Routing
import Hummingbird
import RadGridCore

/// How the portal listens and what it allows.
public struct PortalConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8106
    public var accounts = AccountSettings()
    /// Folder of the reading page's files; nil serves the copy built into the module.
    public var publicDirectory: String?
    /// Parsed instance headers kept in memory (QIDO, metadata, the case view).
    public var headerCacheEntries = 20_000
    /// Decoded images kept in memory for scrolling and re-windowing (bytes).
    public var imageCacheBytes = 512 << 20
    /// Web origins of DICOMweb viewers served elsewhere (e.g. `https://ohif.example.org`) that
    /// may call `/dicomweb` from the browser (CORS); empty: same origin only.
    public var corsOrigins: [String] = []
    /// HTTPS (with a client CA: client certificates required); plain HTTP when nil.
    public var tls: ServerTLS?
    /// Interval of the keep-alive comments on event streams.
    public var keepAlive: Duration = .seconds(15)
    /// The routing policy (qualification rules apply when QC suspends an expert; explanations).
    public var routing: RoutingConfig = .standard
    /// What is read again and when experts are flagged (`Ops/qc.json`).
    public var qc: QCPolicy = .standard
    public init() {}
}

/// A failed request: HTTP status, stable code, a message without patient data or secrets.
public struct PortalError: CodedError, Equatable {
    public let status: Int
    public let code: String
    public let message: String
    public var retryAfterSeconds: Int?

    public init(_ status: Int, _ code: String, _ message: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    static func badRequest(_ message: String) -> PortalError { PortalError(400, "portal.badRequest", message) }
    static func unauthorized(_ message: String) -> PortalError { PortalError(401, "portal.unauthorized", message) }
    static func forbidden(_ message: String) -> PortalError { PortalError(403, "portal.forbidden", message) }
    static func notFound(_ message: String) -> PortalError { PortalError(404, "portal.notFound", message) }
    static func state(_ message: String) -> PortalError { PortalError(409, "portal.state", message) }
    static func notAcceptable(_ message: String) -> PortalError { PortalError(406, "portal.notAcceptable", message) }
}

/// Response helpers shared by the handlers.
enum Reply {
    static func json(_ value: Any, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func bytes(_ bytes: [UInt8], type: String, status: HTTPResponse.Status = .ok, cache: String = "private, no-store") -> Response {
        Response(status: status, headers: [.contentType: type, .cacheControl: cache], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ error: PortalError) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: ["error": ["code": error.code, "message": error.message]], options: [.sortedKeys])) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"]
        if let retry = error.retryAfterSeconds { headers[.retryAfter] = String(retry) }
        if error.status == 401 { headers[.wwwAuthenticate] = "Bearer realm=\"radgrid\"" }
        return Response(status: .init(code: error.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension Request {
    /// The JSON object body (at most `limit` bytes), or a 400.
    func jsonObject(limit: Int = 256 << 10) async throws -> [String: Any] {
        let buffer = try await body.collect(upTo: limit)
        guard buffer.readableBytes > 0 else { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any] else {
            throw PortalError.badRequest("the body must be a JSON object")
        }
        return object
    }

    /// The bearer token of the Authorization header.
    var bearerToken: String? {
        guard let header = headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }
}
