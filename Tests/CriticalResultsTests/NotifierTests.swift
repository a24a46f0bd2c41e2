import CriticalResults
import Foundation
import GridContract
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import Testing
import TestSupport

/// The notifier against a real HTTP receiver (Python, checking every signature with its own
/// HMAC) that is down, then fails on purpose, then comes back; escalation on an injected clock.
@Suite("Critical results: webhook delivery and escalation", .serialized)
struct NotifierTests {
    static let t0: Int64 = 1_750_000_000_000
    static let secret = "a-site-secret-of-32-bytes-length"
    static let adminSecret = "the-admins-secret-0123456789abcd"

    static func policy() -> CriticalResultPolicy {
        var policy = CriticalResultPolicy()
        policy.initialBackoffMs = 1_000
        policy.maxBackoffMs = 4_000
        policy.maxAttempts = 6
        policy.requestTimeoutMs = 3_000
        return policy
    }

    func configure(_ store: CriticalResultStore, receiver: WebhookReceiver, adminReceiver: WebhookReceiver) async throws {
        try await store.setSiteWebhook(try SiteWebhook(url: receiver.url("/site"), escalationURL: receiver.url("/second"), secret: Self.secret),
                                       site: SiteID(unchecked: "H1"))
        try await store.setAdminWebhook(try WebhookEndpoint(url: adminReceiver.url("/admins"), secret: Self.adminSecret))
    }

    @Test func retriesUntilTheSiteComesBackThenEscalatesUntilAcknowledged() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store(Self.policy())
        let clock = TestClock(Self.t0)
        let notifier = CriticalResultNotifier(store: store, clock: clock.function, logger: Logger(label: "test.critical"))
        let receiver = WebhookReceiver(secret: Self.secret)
        let admins = WebhookReceiver(secret: Self.adminSecret)
        try await admins.start()
        try await configure(store, receiver: receiver, adminReceiver: admins)
        let study = StudyUID(unchecked: "1.2.826.0.1.3680043.9.7.2")
        let quiet = StudyUID(unchecked: "1.2.826.0.1.3680043.9.7.3")
        try await store.raise(study: study, caseID: CaseID(unchecked: "c-7f3a"), site: SiteID(unchecked: "H1"), source: .report, priority: .stat, now: clock.ms)

        // 1. Nothing listens yet: a transport failure, retried after 1 s.
        var pass = try await notifier.pass()
        #expect(pass.claimed == 1 && pass.failed == 1)
        #expect(try await store.results(study: study).first?.lastError?.hasPrefix("critical.transport") == true)
        // 2. The site is up but answers 500 once.
        try await receiver.start(failures: ["/site": 1])
        #expect(try await notifier.pass().claimed == 0, "not before the backoff")
        clock.advance(by: 1_000)
        pass = try await notifier.pass()
        #expect(pass.claimed == 1 && pass.failed == 1)
        #expect(try await store.results(study: study).first?.lastError == "http 500")
        // 3. Backoff doubled to 2 s; then delivered.
        clock.advance(by: 1_999)
        #expect(try await notifier.pass().claimed == 0)
        clock.advance(by: 1)
        pass = try await notifier.pass()
        #expect(pass.delivered == 1)
        var result = try #require(try await store.results(study: study).first)
        #expect(result.state == .delivered)
        #expect(result.attempts == 3)

        var site = receiver.requests()
        #expect(site.map(\.status) == [500, 200])
        #expect(site.allSatisfy { $0.signatureValid }, "Python's HMAC agrees with the grid's signature")
        #expect(site.allSatisfy { $0.path == "/site" && $0.event == "critical.raised" && $0.delivery == result.deliveryID(level: 0) })
        let body = try #require(site.last?.body)
        #expect(Set(body.keys) == ["event", "delivery", "result", "study", "case", "site", "source", "priority", "raisedAt", "raisedMs",
                                   "escalationLevel", "attempt", "ackPath", "target"], "only these fields: no patient data")
        #expect(body["study"] as? String == study.rawValue)
        #expect(body["ackPath"] as? String == "/studies/\(study.rawValue)/critical/ack")
        #expect(body["priority"] as? String == "stat")
        #expect(body["attempt"] as? Int == 3)
        #expect(body["raisedAt"] as? String == "2025-06-15T15:06:40.000Z")

        // 4. Unacknowledged: 15 minutes after raising (stat), the second contact is told ...
        try await store.raise(study: quiet, caseID: nil, site: SiteID(unchecked: "H1"), source: .ai, priority: .stat, now: clock.ms)
        clock.set(Self.t0 + 15 * 60_000)
        pass = try await notifier.pass()
        #expect(pass.escalated == 1)
        site = receiver.requests()
        let second = site.filter { $0.path == "/second" }
        #expect(second.count == 1)
        #expect(second.first?.event == "critical.escalated")
        #expect(second.first?.body["escalationLevel"] as? Int == 1)
        #expect(second.first?.body["target"] as? String == "secondContact")
        #expect(second.first?.signatureValid == true)
        // ... the other study was acknowledged in time: nothing escalates for it, ever.
        _ = try await store.acknowledge(study: quiet, site: SiteID(unchecked: "H1"), by: "Dr Wang (ward 3)", method: "phone", now: clock.ms)
        // 5. ... and 30 minutes after that, the grid's admins (signed with their own secret).
        clock.advance(by: 30 * 60_000 - 1)
        #expect(try await notifier.pass().escalated == 0)
        clock.advance(by: 1)
        pass = try await notifier.pass()
        #expect(pass.escalated == 1 && pass.delivered == 1)
        let admin = admins.requests()
        #expect(admin.count == 1)
        #expect(admin.first?.signatureValid == true)
        #expect(admin.first?.body["study"] as? String == study.rawValue)
        #expect(admin.first?.body["escalationLevel"] as? Int == 2)
        #expect(admin.first?.delivery == result.deliveryID(level: 2))
        // 6. Acknowledged: stays so, and nothing more is sent.
        _ = try await store.acknowledge(study: study, site: SiteID(unchecked: "H1"), by: "Dr Wang (ward 3)", method: "phone", now: clock.ms)
        clock.advance(by: 24 * 3_600_000)
        pass = try await notifier.pass()
        #expect(pass == CriticalResultNotifier.PassSummary())
        result = try #require(try await store.results(study: study).first)
        #expect(result.state == .acknowledged)
        #expect(result.escalationLevel == 2)
        #expect(receiver.requests().filter { ($0.body["study"] as? String) == quiet.rawValue }.map(\.path) == ["/site"])
        #expect(try await fixture.auditActions(study: study.rawValue) == [
            "critical.raised", "critical.deliveryFailed", "critical.deliveryFailed", "critical.delivered",
            "critical.escalated", "critical.delivered", "critical.escalated", "critical.delivered", "critical.acknowledged",
        ])
        try await notifier.shutdown()
    }

    @Test func aSiteWithoutWebhookIsDeadLetteredButStillEscalates() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        var policy = Self.policy()
        policy.maxAttempts = 2
        let store = fixture.store(policy)
        let clock = TestClock(Self.t0)
        let notifier = CriticalResultNotifier(store: store, clock: clock.function)
        let admins = WebhookReceiver(secret: Self.adminSecret)
        try await admins.start()
        try await store.setAdminWebhook(try WebhookEndpoint(url: admins.url("/admins"), secret: Self.adminSecret))
        let study = StudyUID(unchecked: "1.2.826.0.1.3680043.9.7.4")
        try await store.raise(study: study, caseID: nil, site: SiteID(unchecked: "H9"), source: .ai, priority: .stat, now: clock.ms)
        _ = try await notifier.pass()
        clock.advance(by: 1_000)
        #expect(try await notifier.pass().dead == 1)
        let dead = try #require(try await store.results(study: study).first)
        #expect(dead.state == .dead)
        #expect(dead.lastError == "critical.noWebhook")
        // Escalation still runs: level 1 (no second contact either: dead-lettered in turn), then the admins.
        clock.set(Self.t0 + 15 * 60_000)
        _ = try await notifier.pass()
        clock.advance(by: 1_000)
        _ = try await notifier.pass()
        clock.set(Self.t0 + 45 * 60_000)
        #expect(try await notifier.pass().delivered == 1)
        #expect(admins.requests().map(\.status) == [200])
        #expect(try await store.list().map(\.state) == [.dead], "still visible until acknowledged")
        try await notifier.shutdown()
    }

    /// The service itself, on the real clock: raise, and the receiver gets it.
    @Test func theServiceDeliversOnItsOwn() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        var policy = Self.policy()
        policy.initialBackoffMs = 50
        let store = fixture.store(policy)
        let receiver = WebhookReceiver(secret: Self.secret)
        try await receiver.start(failures: ["/site": 2])
        try await configure(store, receiver: receiver, adminReceiver: receiver)
        let notifier = CriticalResultNotifier(store: store, pollInterval: .milliseconds(20))
        let group = ServiceGroup(services: [notifier], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let study = StudyUID(unchecked: "1.2.826.0.1.3680043.9.7.5")
            try await store.raise(study: study, caseID: nil, site: SiteID(unchecked: "H1"), source: .report, priority: .urgent, now: WallClock.nowMilliseconds())
            var delivered = false
            for _ in 0..<250 where !delivered {
                try await Task.sleep(for: .milliseconds(20))
                delivered = try await store.results(study: study).first?.state == .delivered
            }
            #expect(delivered)
            #expect(receiver.requests().map(\.status) == [500, 500, 200])
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
