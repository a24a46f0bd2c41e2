import CriticalResults
import Foundation
import GridContract
import RadGridCore
import RedisClient
import Testing
import TestSupport

/// Every transition at the script level, against a real Redis, with the clock passed in.
@Suite("Critical results: the scripts")
struct CriticalScriptTests {
    static let t0: Int64 = 1_750_000_000_000
    let study = StudyUID(unchecked: "1.2.826.0.1.3680043.9.7.1")
    let site = SiteID(unchecked: "H1")

    static func fastPolicy() -> CriticalResultPolicy {
        var policy = CriticalResultPolicy()
        policy.initialBackoffMs = 5_000
        policy.maxBackoffMs = 20_000
        policy.maxAttempts = 4
        return policy
    }

    @Test func raisingTwiceNotifiesOnce() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store()
        #expect(try await store.raise(study: study, caseID: CaseID(unchecked: "c-1"), site: site, source: .report, priority: .stat, now: Self.t0) == .raised)
        #expect(try await store.raise(study: study, caseID: CaseID(unchecked: "c-1"), site: site, source: .report, priority: .stat, now: Self.t0 + 5) == .alreadyRaised(.notifying))
        // Another source for the same study is a result of its own.
        #expect(try await store.raise(study: study, caseID: nil, site: site, source: .ai, priority: .stat, now: Self.t0) == .raised)
        let claims = try await store.claimDeliveries(now: Self.t0 + 10, limit: 10, token: "n1")
        #expect(claims.count == 2)
        #expect(Set(claims.map(\.result.source)) == [.report, .ai])
        #expect(claims.allSatisfy { $0.level == 0 && $0.attempt == 1 && $0.result.site == site && $0.result.study == study })
        let results = try await store.results(study: study)
        #expect(results.count == 2)
        #expect(results.first { $0.source == .report }?.raisedMs == Self.t0, "the second raise changed nothing")
        #expect(try await fixture.auditActions(study: study.rawValue) == ["critical.raised", "critical.raised"])
        #expect(try await store.unacknowledgedCount() == 2)
    }

    @Test func aClaimIsLeasedAndFencedByItsToken() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store()
        try await store.raise(study: study, caseID: nil, site: site, source: .report, priority: .urgent, now: Self.t0)
        let first = try #require(try await store.claimDeliveries(now: Self.t0, limit: 10, token: "A").first)
        #expect(first.attempt == 1)
        // Leased: nobody else gets it until the lease ends.
        #expect(try await store.claimDeliveries(now: Self.t0 + store.policy.leaseMs - 1, limit: 10, token: "B").isEmpty)
        let second = try #require(try await store.claimDeliveries(now: Self.t0 + store.policy.leaseMs, limit: 10, token: "B").first)
        #expect(second.attempt == 2, "an attempt whose notifier vanished still counts")
        // The first notifier comes back late: its outcome is ignored.
        #expect(try await store.record(first, outcome: .delivered, now: Self.t0 + store.policy.leaseMs + 1) == .stale)
        #expect(try await store.results(study: study).first?.state == .notifying)
        #expect(try await store.record(second, outcome: .delivered, now: Self.t0 + store.policy.leaseMs + 2) == .delivered)
        let result = try #require(try await store.results(study: study).first)
        #expect(result.state == .delivered)
        #expect(result.deliveries.first?.state == .delivered)
        #expect(try await store.claimDeliveries(now: Self.t0 + 10 * store.policy.leaseMs, limit: 10, token: "C").isEmpty)
    }

    @Test func failuresBackOffDoublingThenDeadLetterAndStillEscalate() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store(Self.fastPolicy())
        try await store.raise(study: study, caseID: nil, site: site, source: .ai, priority: .stat, now: Self.t0)
        var now = Self.t0
        var dues: [Int64] = []
        for attempt in 1...4 {
            let claim = try #require(try await store.claimDeliveries(now: now, limit: 10, token: "t\(attempt)").first, "attempt \(attempt) is due")
            #expect(claim.attempt == attempt)
            let recorded = try await store.record(claim, outcome: .failed("http 500"), now: now)
            if attempt < 4 {
                guard case .retry(let due) = recorded else { Issue.record("attempt \(attempt): \(recorded)"); return }
                dues.append(due - now)
                #expect(try await store.claimDeliveries(now: due - 1, limit: 10, token: "early").isEmpty, "not before the backoff")
                now = due
            } else {
                #expect(recorded == .dead)
            }
        }
        #expect(dues == [5_000, 10_000, 20_000], "doubling from 5 s, capped at 20 s")
        let dead = try #require(try await store.results(study: study).first)
        #expect(dead.state == .dead)
        #expect(dead.attempts == 4)
        #expect(dead.lastError == "http 500")
        #expect(try await store.deadLetters().map(\.entry) == ["ai:\(study)|0"])
        #expect(try await store.list().map(\.id) == [dead.id], "a dead result stays visible")
        // It still escalates: 15 minutes after it was raised (stat).
        _ = try await store.escalateDue(now: now)
        #expect(try await store.escalateDue(now: Self.t0 + 15 * 60_000).map(\.level) == [1])
        // An operator sends it again: fresh attempts.
        #expect(try await store.retryDead(study: study, now: now) == 1)
        #expect(try await store.deadLetters().isEmpty)
        let again = try #require(try await store.results(study: study).first)
        #expect(again.state == .notifying)
        let retried = try await store.claimDeliveries(now: Self.t0 + 15 * 60_000, limit: 10, token: "r")
        #expect(retried.first { $0.level == 0 }?.attempt == 1)
        #expect(try await fixture.auditActions(study: study.rawValue).filter { $0 == "critical.deliveryFailed" }.count == 3)
        #expect(try await fixture.auditActions(study: study.rawValue).contains("critical.deadLettered"))
        #expect(try await fixture.auditActions(study: study.rawValue).contains("critical.retried"))
    }

    @Test func escalationHappensOncePerLevelOnTheNotifiersClock() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store()
        try await store.raise(study: study, caseID: nil, site: site, source: .report, priority: .stat, now: Self.t0)
        let firstAt = Self.t0 + 15 * 60_000, secondAt = firstAt + 30 * 60_000
        #expect(try await store.escalateDue(now: Self.t0).isEmpty, "the first pass only schedules it")
        #expect(try await store.results(study: study).first?.nextEscalationMs == firstAt)
        #expect(try await store.escalateDue(now: firstAt - 1).isEmpty)
        // Two notifiers at the same moment: one escalation.
        async let one = store.escalateDue(now: firstAt)
        async let two = store.escalateDue(now: firstAt)
        let levels = try await (one + two).map(\.level)
        #expect(levels == [1])
        #expect(try await store.escalateDue(now: firstAt + 1).isEmpty)
        #expect(try await store.escalateDue(now: secondAt - 1).isEmpty)
        #expect(try await store.escalateDue(now: secondAt).map(\.level) == [2])
        #expect(try await store.escalateDue(now: secondAt + 24 * 3_600_000).isEmpty, "two levels, then no more")
        let result = try #require(try await store.results(study: study).first)
        #expect(result.escalationLevel == 2)
        #expect(result.nextEscalationMs == nil)
        #expect(result.deliveries.map(\.target) == [.site, .secondContact, .admins])
        let claimed = try await store.claimDeliveries(now: secondAt, limit: 10, token: "x")
        #expect(claimed.map(\.level).sorted() == [0, 1, 2])
        #expect(try await fixture.auditActions(study: study.rawValue).filter { $0 == "critical.escalated" }.count == 2)
    }

    @Test func escalationTimesFollowThePriority() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store()
        let routine = StudyUID(unchecked: "1.2.3.4.5")
        try await store.raise(study: routine, caseID: nil, site: site, source: .report, priority: .routine, now: Self.t0)
        _ = try await store.escalateDue(now: Self.t0)
        #expect(try await store.escalateDue(now: Self.t0 + 59 * 60_000).isEmpty)
        #expect(try await store.escalateDue(now: Self.t0 + 60 * 60_000).map(\.level) == [1])
    }

    @Test func acknowledgingRecordsWhoHowWhenOnceAndEndsEverything() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store()
        try await store.raise(study: study, caseID: nil, site: site, source: .report, priority: .stat, now: Self.t0)
        _ = try await store.escalateDue(now: Self.t0)
        // Another site, and a study without a result: the same answer.
        await #expect(throws: CriticalResultError(.notFound, "no critical result for this study")) {
            try await store.acknowledge(study: study, site: SiteID(unchecked: "H2"), by: "Dr Wang", method: "phone", now: Self.t0 + 1)
        }
        await #expect(throws: CriticalResultError(.notFound, "no critical result for this study")) {
            try await store.acknowledge(study: StudyUID(unchecked: "9.9.9"), site: site, by: "Dr Wang", method: "phone", now: Self.t0 + 1)
        }
        await #expect(throws: CriticalResultError.self) {
            try await store.acknowledge(study: study, site: site, by: " ", method: "phone", now: Self.t0 + 1)
        }
        await #expect(throws: CriticalResultError.self) {
            try await store.acknowledge(study: study, site: site, by: "Dr Wang", method: "telepathy", now: Self.t0 + 1)
        }
        let acked = try await store.acknowledge(study: study, site: site, by: "Dr Wang (ward 3)", method: "phone", now: Self.t0 + 60_000)
        #expect(acked.first?.state == .acknowledged)
        #expect(acked.first?.acknowledgement == CriticalAcknowledgement(by: "Dr Wang (ward 3)", method: "phone", atMs: Self.t0 + 60_000))
        // Again, by someone else: the first acknowledgement stands.
        let again = try await store.acknowledge(study: study, site: site, by: "Nurse Li", method: "portal", now: Self.t0 + 120_000)
        #expect(again.first?.acknowledgement?.by == "Dr Wang (ward 3)")
        #expect(try await fixture.auditActions(study: study.rawValue).filter { $0 == "critical.acknowledged" }.count == 1)
        // No delivery, no escalation, not in the open list; kept for the retention with a TTL.
        #expect(try await store.claimDeliveries(now: Self.t0 + 3_600_000, limit: 10, token: "z").isEmpty)
        #expect(try await store.escalateDue(now: Self.t0 + 48 * 3_600_000).isEmpty)
        #expect(try await store.list().isEmpty)
        #expect(try await store.list(includeAcknowledged: true).map(\.state) == [.acknowledged])
        #expect(try await store.unacknowledgedCount() == 0)
        let ttl = try await fixture.client.send("PTTL", RedisArgument(store.keys.result(study: study.rawValue, source: .report))).int ?? -2
        #expect(ttl > 0 && ttl <= store.policy.retentionMs)
        // A raise after the acknowledgement (a retried signature) notifies no one again.
        #expect(try await store.raise(study: study, caseID: nil, site: site, source: .report, priority: .stat, now: Self.t0 + 200_000) == .alreadyRaised(.acknowledged))
        // A late outcome of a delivery in flight at the acknowledgement is ignored.
        #expect(try await store.retryDead(study: study, now: Self.t0) == 0)
    }

    @Test func anAcknowledgementMidDeliveryMakesTheOutcomeStale() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        let store = fixture.store()
        try await store.raise(study: study, caseID: nil, site: site, source: .report, priority: .stat, now: Self.t0)
        let claim = try #require(try await store.claimDeliveries(now: Self.t0, limit: 10, token: "A").first)
        _ = try await store.acknowledge(study: study, site: site, by: "Dr Wang", method: "phone", now: Self.t0 + 1)
        #expect(try await store.record(claim, outcome: .failed("http 503"), now: Self.t0 + 2) == .stale)
        let result = try #require(try await store.results(study: study).first)
        #expect(result.state == .acknowledged)
        #expect(result.deliveries.first?.state == .cancelled)
    }

    /// Every key the module writes is in the documented layout; open results keep no TTL (they
    /// must stay visible), acknowledged ones expire, the acknowledged index is pruned.
    @Test func everyKeyIsDocumentedAndAcknowledgedResultsExpire() async throws {
        let fixture = try await CriticalFixture.make()
        defer { fixture.client.shutdown() }
        var policy = CriticalResultPolicy()
        policy.retentionMs = 60_000
        let store = fixture.store(policy)
        try await store.setSiteWebhook(try SiteWebhook(url: "http://127.0.0.1:9/site", escalationURL: nil, secret: String(repeating: "s", count: 32)), site: site)
        try await store.setAdminWebhook(try WebhookEndpoint(url: "https://admins.example/hook", secret: String(repeating: "a", count: 32)))
        let other = StudyUID(unchecked: "1.2.3.9")
        try await store.raise(study: study, caseID: nil, site: site, source: .report, priority: .stat, now: Self.t0)
        try await store.raise(study: other, caseID: nil, site: site, source: .ai, priority: .stat, now: Self.t0)
        _ = try await store.escalateDue(now: Self.t0)
        for claim in try await store.claimDeliveries(now: Self.t0, limit: 10, token: "k") {
            try await store.record(claim, outcome: .failed("http 500"), now: Self.t0)
        }
        _ = try await store.acknowledge(study: study, site: site, by: "Dr Wang", method: "phone", now: Self.t0)
        let documented = [
            "crit:{cr}:r:", "crit:{cr}:open", "crit:{cr}:deliveries", "crit:{cr}:timers", "crit:{cr}:dead", "crit:{cr}:acked",
            "crit:{cr}:config:sites", "crit:{cr}:config:admins", "crit:{cr}:config:policy", "{cr}:audit:", "audit:chains",
        ]
        let keys = try await fixture.keys()
        for key in keys {
            #expect(documented.contains { key.hasPrefix($0) }, "\(key) is not in the layout of CriticalResultKeys")
        }
        let ttl = { (key: String) async throws -> Int64 in try await fixture.client.send("PTTL", RedisArgument(fixture.prefix.value + key)).int ?? -2 }
        #expect(try await ttl("crit:{cr}:r:report:\(study)") > 0, "acknowledged: expires after the retention")
        #expect(try await ttl("crit:{cr}:r:ai:\(other)") == -1, "open: kept until acknowledged")
        // Retention policy recorded by the notifiers governs the acknowledgement's TTL.
        #expect(try await ttl("crit:{cr}:r:report:\(study)") <= 60_000)
        // Past the retention, the notifiers prune the acknowledged index.
        _ = try await store.escalateDue(now: Self.t0 + 60_001)
        #expect(try await fixture.client.send("ZCARD", RedisArgument(store.keys.acknowledged)).int == 0)
        // Secrets are stored for signing, but never shown.
        let webhook = try #require(try await store.siteWebhook(site))
        #expect(!webhook.description.contains("ssss"))
        #expect(!(try #require(try await store.adminWebhook())).description.contains("aaaa"))
    }
}
