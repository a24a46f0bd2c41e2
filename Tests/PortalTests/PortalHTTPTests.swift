import Accounts
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Portal
import RedisClient
import Routing
import ServiceLifecycle
import Testing
import TestSupport

/// The portal in-process over real HTTP on a free port, against a real Redis: how it answers
/// bad input, and CORS for a viewer served elsewhere. (Whole workflows run against real
/// processes in IntegrationTests/PortalEndToEndTests.)
@Suite struct PortalHTTPTests {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var code: String? { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]).flatMap { ($0["error"] as? [String: Any])?["code"] as? String } }
    }

    static func send(_ method: String, _ url: String, token: String? = nil, body: String? = nil, headers: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer " + token, forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body { request.httpBody = Data(body.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields { fields[String(describing: key).lowercased()] = String(describing: value) }
        return Reply(status: http.statusCode, headers: fields, body: data)
    }

    func withPortal(_ body: (String, String) async throws -> Void) async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let router = ExpertRouter(redis: client, prefix: prefix, actor: "test")
        try await router.upsertExperts([Expert(id: "E1", name: "Dr One", specialties: [try Specialty("CT/head")],
                                               credentials: [Credential(scope: "H001")], capacity: 10, licence: Licence(number: "L-1"), practiceSince: 0)])
        var settings = AccountSettings()
        settings.bcryptCost = 4
        try await AccountStore(client: client, prefix: prefix, settings: settings).setPassword(user: "E1", role: .expert, expert: "E1", password: "in-process test 1", by: "admin:test")
        var configuration = PortalConfiguration()
        configuration.port = 0
        configuration.corsOrigins = ["https://viewer.example.org"]
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let services = try PortalApplication.services(client: client, prefix: prefix, configuration: configuration, logger: Logger(label: "test.portal")) { continuation.yield($0) }
        let group = ServiceGroup(services: services, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw TestSupportError("the portal did not start") }
            let base = "http://127.0.0.1:\(port)"
            let login = try await Self.send("POST", base + "/api/v1/login", body: #"{"user": "E1", "password": "in-process test 1"}"#)
            let token = ((try JSONSerialization.jsonObject(with: login.body)) as? [String: Any])?["token"] as? String ?? ""
            do {
                try await body(base, token)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func badInputGetsAClearErrorAndSecurityHeaders() async throws {
        try await withPortal { base, token in
            #expect(!token.isEmpty)
            let notJSON = try await Self.send("POST", base + "/api/v1/login", body: "user=E1")
            #expect(notJSON.status == 400 && notJSON.code == "portal.badRequest")
            let missing = try await Self.send("POST", base + "/api/v1/login", body: #"{"user": "E1"}"#)
            #expect(missing.status == 400)
            let noToken = try await Self.send("GET", base + "/api/v1/me")
            #expect(noToken.status == 401 && noToken.code == "portal.unauthorized" && noToken.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            let unknownCase = try await Self.send("GET", base + "/api/v1/cases/no-such-case", token: token)
            #expect(unknownCase.status == 404)
            let badReason = try await Self.send("POST", base + "/api/v1/cases/no-such-case/decline", token: token, body: #"{"reason": "bored"}"#)
            #expect(badReason.status == 404 || badReason.status == 400)
            let badUID = try await Self.send("GET", base + "/dicomweb/studies/not..a..uid/series", token: token)
            #expect(badUID.status == 400)
            let badQuery = try await Self.send("GET", base + "/dicomweb/studies?NoSuchAttribute=1", token: token)
            #expect(badQuery.status == 400 && String(decoding: badQuery.body, as: UTF8.self).contains("NoSuchAttribute"))
            let empty = try await Self.send("GET", base + "/dicomweb/studies", token: token)
            #expect(empty.status == 200 && String(decoding: empty.body, as: UTF8.self) == "[]", "an expert without cases finds nothing")
            let page = try await Self.send("GET", base + "/")
            #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
            #expect(try await Self.send("GET", base + "/app/../Package.swift").status == 404)
            let me = try await Self.send("GET", base + "/api/v1/me", token: token)
            #expect(me.status == 200 && me.headers["cache-control"] == "no-store")
        }
    }

    @Test func viewersFromListedOriginsMayCallDICOMweb() async throws {
        try await withPortal { base, token in
            let preflight = try await Self.send("OPTIONS", base + "/dicomweb/studies", headers: ["Origin": "https://viewer.example.org",
                                                                                                 "Access-Control-Request-Method": "GET",
                                                                                                 "Access-Control-Request-Headers": "authorization"])
            #expect(preflight.status == 204)
            #expect(preflight.headers["access-control-allow-origin"] == "https://viewer.example.org")
            #expect(preflight.headers["access-control-allow-headers"]?.contains("Authorization") == true)
            let allowed = try await Self.send("GET", base + "/dicomweb/studies", token: token, headers: ["Origin": "https://viewer.example.org"])
            #expect(allowed.status == 200 && allowed.headers["access-control-allow-origin"] == "https://viewer.example.org")
            let other = try await Self.send("GET", base + "/dicomweb/studies", token: token, headers: ["Origin": "https://evil.example.com"])
            #expect(other.headers["access-control-allow-origin"] == nil)
            let api = try await Self.send("GET", base + "/api/v1/me", token: token, headers: ["Origin": "https://viewer.example.org"])
            #expect(api.headers["access-control-allow-origin"] == nil, "only DICOMweb is opened to other origins")
        }
    }
}
