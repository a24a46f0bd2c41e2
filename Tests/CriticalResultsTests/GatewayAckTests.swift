import Audit
import CriticalResults
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Gateway
import GridContract
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import StudyStore
import Testing
import TestSupport

/// `POST /studies/{uid}/critical/ack` through the real gateway over HTTP, with real site tokens.
@Suite("Critical results: the site's acknowledgement through the gateway")
struct GatewayAckTests {
    struct Reply {
        var status: Int
        var json: [String: Any]
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    func post(_ base: String, _ path: String, token: String?, body: String) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.upload(for: request, from: Data(body.utf8))
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0,
                     json: (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    @Test func aSiteAcknowledgesItsOwnCriticalResultOnce() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        var configuration = GatewayConfiguration()
        configuration.port = 0
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try GatewayApplication.make(client: fixture.client, prefix: fixture.prefix, configuration: configuration,
                                          logger: Logger(label: "test.gateway")) { continuation.yield($0) }
        let group = ServiceGroup(services: [app], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw TestSupportError("gateway did not start") }
            let base = "http://127.0.0.1:\(port)"
            let tokens = SiteTokens(client: fixture.client, prefix: fixture.prefix)
            let h1 = try await tokens.issue(site: "H1"), h2 = try await tokens.issue(site: "H2")
            let store = fixture.store()
            let study = "1.2.826.0.1.3680043.9.7.10", path = "/studies/1.2.826.0.1.3680043.9.7.10/critical/ack"
            try await store.raise(study: StudyUID(unchecked: study), caseID: nil, site: SiteID(unchecked: "H1"), source: .report,
                                  priority: .stat, now: WallClock.nowMilliseconds())
            let good = #"{"by": "Dr Wang (ward 3)", "method": "phone"}"#

            #expect(try await post(base, path, token: nil, body: good).status == 401)
            // Another site's study and a study without a result answer alike.
            let foreign = try await post(base, path, token: h2, body: good)
            let missing = try await post(base, "/studies/1.2.3.4/critical/ack", token: h1, body: good)
            #expect(foreign.status == 404 && missing.status == 404)
            #expect(foreign.errorCode == "critical.notFound" && missing.errorCode == foreign.errorCode)
            #expect((foreign.json["error"] as? [String: Any])?["message"] as? String == (missing.json["error"] as? [String: Any])?["message"] as? String)
            // Malformed bodies: typed 400s, and nothing changes.
            for body in ["not json", #"{"by": "Dr Wang"}"#, #"{"by": "", "method": "phone"}"#, #"{"by": "Dr Wang", "method": "carrier pigeon"}"#, #"{"by": 7, "method": "phone"}"#] {
                let bad = try await post(base, path, token: h1, body: body)
                #expect(bad.status == 400, "\(body)")
                #expect(bad.errorCode == "critical.invalidAcknowledgement", "\(body)")
            }
            #expect(try await store.results(study: StudyUID(unchecked: study)).first?.state == .notifying)

            let ok = try await post(base, path, token: h1, body: good)
            #expect(ok.status == 200)
            #expect(ok.json["state"] as? String == "acknowledged")
            let acknowledged = ok.json["acknowledged"] as? [String: Any]
            #expect(acknowledged?["by"] as? String == "Dr Wang (ward 3)")
            #expect(acknowledged?["method"] as? String == "phone")
            // Again: 200, the first acknowledgement stands.
            let again = try await post(base, path, token: h1, body: #"{"by": "Nurse Li", "method": "portal"}"#)
            #expect(again.status == 200)
            #expect((again.json["acknowledged"] as? [String: Any])?["by"] as? String == "Dr Wang (ward 3)")
            // Audited once, by the site, in the study's timeline.
            let entries = try await AuditTrail.timeline(client: fixture.client, prefix: fixture.prefix, study: study)
            let acks = entries.filter { $0.action == "critical.acknowledged" }
            #expect(acks.count == 1)
            #expect(acks.first?.actor == "site:H1")
            #expect(acks.first?.details.contains("method=phone") == true)
            #expect(try await AuditTrail.verify(client: fixture.client, prefix: fixture.prefix).isIntact)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
