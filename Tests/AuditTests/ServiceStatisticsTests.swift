@testable import Audit
import Crypto
import Foundation
import RadGridCore
import RedisClient
import TestSupport
import Testing

/// The regulator's daily figures, computed from entries written into real chains: a known day
/// of intake, reports, sign-ins, QC and critical results, with known times, gives exact figures.
@Suite("Daily service statistics")
struct ServiceStatisticsTests {
    static let day0: Int64 = 1_741_564_800_000  // 2025-03-10T00:00:00Z
    static let second: Int64 = 1000, minute: Int64 = 60_000, hour: Int64 = 3_600_000, day: Int64 = 86_400_000

    /// The append script with the caller's time: the prelude's `rg_audit_put`, the path intake
    /// uses with the gateway's clock (hashed here, linked to the head, checked by `verify`).
    static let call = "return rg_audit_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"
    static let putScript = RedisScript(AuditLua.append.replacingOccurrences(
        of: call, with: "return rg_audit_put(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])"))

    struct Writer {
        let client: RedisClient
        let prefix: KeyPrefix

        func put(_ chain: String, at ts: Int64, _ actor: String, _ action: String, study: String = "", _ details: String) async throws {
            let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
            try await trail.register()
            let previous = try await client.send("GET", RedisArgument(trail.headKey)).string ?? AuditTrail.genesisHash
            let hash = AuditTrail.hash(previous: previous, timestampMilliseconds: ts, actor: actor, action: action, study: study, details: details)
            try await client.evalScript(ServiceStatisticsTests.putScript, keys: trail.scriptKeys(study: study).map { RedisArgument($0) },
                                        arguments: [previous, String(ts), actor, action, study, details, hash].map { RedisArgument($0) })
        }

        func all() async throws -> [AuditRecord] {
            var records: [AuditRecord] = []
            for chain in try await AuditTrail.chains(client: client, prefix: prefix) {
                records += try await AuditTrail(client: client, prefix: prefix, chain: chain).entries()
            }
            return records
        }
    }

    static func digest(_ records: [AuditRecord], from: Int64, until: Int64) -> String {
        let lines = records.filter { $0.timestampMilliseconds >= from && $0.timestampMilliseconds < until }
            .map { "\($0.chain) \($0.id) \($0.hash)\n" }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return SHA256.hash(data: Array(lines.joined().utf8)).map { String(format: "%02x", $0) }.joined()
    }

    @Test func aKnownTwoDaysGiveExactFigures() async throws {
        #expect(AuditLua.append.contains(Self.call), "the append script's last line changed: update putScript")
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let w = Writer(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix("stats")))
        let (d0, m, h, s, d) = (Self.day0, Self.minute, Self.hour, Self.second, Self.day)
        let (a, b, c, dd, e, f) = ("1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4", "1.2.3.5", "1.2.3.6")

        // Before the window: context only (a receipt, a result raised and still open), and a sign-in not counted.
        try await w.put("s:" + dd, at: d0 - h, "site:H2", "study.received", study: dd, "priority=urgent")
        try await w.put("cr", at: d0 - 2 * h, "coordinator:c1", "critical.raised", study: "1.2.3.9", "result=cr-old;source=ai;priority=stat;site=H2")
        try await w.put("access", at: d0 - 30 * m, "system:portal", "auth.login", "user=E9;role=expert;address=10.0.0.9")
        // Day 1.
        try await w.put("access", at: d0 + 30 * m, "system:portal", "auth.login", "user=E1;role=expert;address=10.0.0.1")
        try await w.put("access", at: d0 + 40 * m, "system:portal", "auth.login", "user=alice;role=admin;address=10.0.0.2")
        try await w.put("access", at: d0 + 45 * m, "system:portal", "auth.failed", "user=E5;address=10.0.0.3;reason=password")
        try await w.put("access", at: d0 + 50 * m, "system:portal", "auth.login", "user=E4;role=qc;address=10.0.0.4")
        try await w.put("s:" + a, at: d0 + h, "site:H1", "study.received", study: a, "priority=routine")
        try await w.put("s:" + a, at: d0 + h + m, "coordinator:c1", "study.queued", study: a, "from=received to=queued instances=3 priority=routine generation=0")
        try await w.put("s:" + a, at: d0 + h + 5 * m, "worker:w1", "study.screened.critical", study: a,
                        "from=processing to=screened urgency=critical score=0.97 findings=ich images=3 priority=stat")
        try await w.put("s:" + a, at: d0 + h + 35 * m, "expert:E1", "report.signed", study: a, "case=cA;expert=E1;sha256=aa")
        try await w.put("cr", at: d0 + h + 36 * m, "expert:E1", "critical.raised", study: a, "result=cr-a;source=report;priority=stat;site=H1")
        try await w.put("cr", at: d0 + h + 46 * m, "site:H1", "critical.acknowledged", study: a, "result=cr-a;site=H1;method=phone;by=dr-x")
        try await w.put("s:" + b, at: d0 + 2 * h, "site:H1", "study.received", study: b, "priority=routine")
        try await w.put("qc", at: d0 + 2 * h, "expert:E1", "qc.sampled", study: a, "case=cA;expert=E1;modality=CT;reasons=random,first_cases;read=1")
        try await w.put("s:" + c, at: d0 + 3 * h, "site:H3", "study.received", study: c, "priority=routine")
        try await w.put("s:" + c, at: d0 + 3 * h + 30 * m, "expert:E1", "report.signed", study: c, "case=cC;expert=E1;sha256=cc")
        try await w.put("s:" + b, at: d0 + 4 * h, "expert:E2", "report.signed", study: b, "case=cB;expert=E2;sha256=bb")
        try await w.put("qc", at: d0 + 4 * h + 10 * m, "expert:E2", "qc.sampled", study: b, "case=cB;expert=E2;modality=MR;reasons=first_cases;read=1")
        try await w.put("s:" + a, at: d0 + 5 * h, "expert:E1", "report.addendum", study: a, "case=cA;expert=E1;sha256=ad")
        try await w.put("s:" + dd, at: d0 + 6 * h, "expert:E3", "report.signed", study: dd, "case=cD;expert=E3;sha256=dd")
        try await w.put("qc", at: d0 + 7 * h, "expert:E2", "qc.scored", study: a, "case=cA;reviewer=E2;score=2b")
        try await w.put("qc", at: d0 + 7 * h + s, "expert:E2", "qc.arbitration", study: a, "case=cA;score=2b")
        try await w.put("qc", at: d0 + 7 * h + 30 * m, "expert:E1", "qc.scored", study: b, "case=cB;reviewer=E1;score=1")
        try await w.put("qc", at: d0 + 7 * h + 30 * m + s, "expert:E1", "qc.closed", study: b, "case=cB;expert=E2;final=1")
        try await w.put("qc", at: d0 + 8 * h, "expert:E4", "qc.arbitrated", study: a, "case=cA;arbiter=E4;final=2a")
        try await w.put("qc", at: d0 + 8 * h + s, "expert:E4", "qc.closed", study: a, "case=cA;expert=E1;final=2a")
        try await w.put("qc", at: d0 + 9 * h, "site:H3", "qc.disputed", study: c, "case=cC;opened=1")
        try await w.put("cr", at: d0 + 10 * h, "coordinator:c1", "critical.escalated", study: "1.2.3.9", "result=cr-old;level=1;to=second;site=H2")
        try await w.put("cr", at: d0 + 20 * h, "coordinator:c1", "critical.raised", study: e, "result=cr-b;source=ai;priority=stat;site=H1")
        // Day 2.
        try await w.put("cr", at: d0 + d + h, "site:H2", "critical.acknowledged", study: "1.2.3.9", "result=cr-old;site=H2;method=portal;by=nurse")
        try await w.put("cr", at: d0 + d + 2 * h, "site:H1", "critical.acknowledged", study: e, "result=cr-b;site=H1;method=phone;by=dr-y")
        try await w.put("s:" + e, at: d0 + d + 3 * h, "site:H1", "study.received", study: e, "priority=bulk")
        try await w.put("s:" + f, at: d0 + d + 4 * h, "expert:E5", "report.signed", study: f, "case=cF;expert=E5;sha256=ff")
        try await w.put("cr", at: d0 + d + 5 * h, "coordinator:c1", "critical.deadLettered", study: e, "result=cr-c;level=0;attempts=5;error=http 500")
        // At the window's end and after: not counted.
        try await w.put("s:" + e, at: d0 + 2 * d, "expert:E6", "report.signed", study: e, "case=cE;expert=E6;sha256=ee")
        try await w.put("access", at: d0 + 2 * d + h, "system:portal", "auth.login", "user=E7;role=expert;address=10.0.0.7")

        #expect(try await AuditTrail.verify(client: client, prefix: w.prefix).isIntact)
        let records = try await w.all()
        let days = ServiceStatistics.compute(entries: records + records.prefix(3), sinceMilliseconds: d0, untilMilliseconds: d0 + 2 * d)
        try #require(days.count == 2)
        let (one, two) = (days[0], days[1])

        #expect(one.schema == "radgrid.service-statistics/1")
        #expect(one.day == "2025-03-10" && two.day == "2025-03-11")
        #expect(one.fromMilliseconds == d0 && one.untilMilliseconds == d0 + d && two.fromMilliseconds == d0 + d && two.untilMilliseconds == d0 + 2 * d)
        #expect(one.wholeDay && two.wholeDay)
        #expect(one.audit.entries == 27 && two.audit.entries == 5)
        #expect(one.audit.sha256 == Self.digest(records, from: d0, until: d0 + d))
        #expect(two.audit.sha256 == Self.digest(records, from: d0 + d, until: d0 + 2 * d))

        #expect(one.studiesReceived == .init(total: 3, byPriority: ["routine": 3]))
        #expect(one.reports == .init(signed: 4, addenda: 1))
        // A: stat (raised by screening) 35 min; B and C: routine 2 h and 30 min; D: urgent, received the day before, 7 h.
        #expect(one.turnaround.byPriority == [
            "stat": DurationSummary(count: 1, medianSeconds: 2100, p90Seconds: 2100, maxSeconds: 2100),
            "routine": DurationSummary(count: 2, medianSeconds: 4500, p90Seconds: 7200, maxSeconds: 7200),
            "urgent": DurationSummary(count: 1, medianSeconds: 25200, p90Seconds: 25200, maxSeconds: 25200),
        ])
        #expect(one.turnaround.unmatched == 0)
        #expect(one.experts == .init(total: 4, signedIn: 2, reporting: 3))
        #expect(one.qualityControl == .init(reviewsOpened: 3, openedByReason: ["random": 1, "first_cases": 2, "dispute": 1], scored: 2,
                                            sentToArbitration: 1, arbitrated: 1, reviewsClosed: 2, finalScores: ["1": 1, "2a": 1],
                                            discrepancies: 1, significantDiscrepancies: 0, disputes: 1, expertsFlagged: 0))
        #expect(one.criticalResults == .init(raised: 2, raisedBySource: ["report": 1, "ai": 1], raisedByPriority: ["stat": 2], acknowledged: 1,
                                             acknowledgementTime: DurationSummary(count: 1, medianSeconds: 600, p90Seconds: 600, maxSeconds: 600),
                                             unacknowledgedAtDayEnd: 2, escalations: 1, deliveryDeadLetters: 0))

        #expect(two.studiesReceived == .init(total: 1, byPriority: ["bulk": 1]))
        #expect(two.reports == .init(signed: 1, addenda: 0))
        #expect(two.turnaround.byPriority.isEmpty && two.turnaround.unmatched == 1)
        #expect(two.experts == .init(total: 1, signedIn: 0, reporting: 1))
        #expect(two.qualityControl.reviewsOpened == 0 && two.qualityControl.reviewsClosed == 0 && two.qualityControl.finalScores.isEmpty)
        // cr-old (raised the day before the window) after 27 h, cr-b after 6 h.
        #expect(two.criticalResults == .init(raised: 0, raisedBySource: [:], raisedByPriority: [:], acknowledged: 2,
                                             acknowledgementTime: DurationSummary(count: 2, medianSeconds: 59400, p90Seconds: 97200, maxSeconds: 97200),
                                             unacknowledgedAtDayEnd: 0, escalations: 0, deliveryDeadLetters: 1))

        // A range that cuts days: partial days, figures of their part only.
        let halves = ServiceStatistics.compute(entries: records, sinceMilliseconds: d0 + 12 * h, untilMilliseconds: d0 + d + 12 * h)
        try #require(halves.count == 2)
        #expect(!halves[0].wholeDay && halves[0].fromMilliseconds == d0 + 12 * h && halves[1].untilMilliseconds == d0 + d + 12 * h)
        #expect(halves[0].criticalResults.raised == 1 && halves[0].criticalResults.unacknowledgedAtDayEnd == 2 && halves[0].reports.signed == 0)
        #expect(halves[1].criticalResults.acknowledged == 2 && halves[1].reports.signed == 1)

        // The JSON a regulator receives: snake_case keys.
        let json = try #require(try JSONSerialization.jsonObject(with: one.encoded()) as? [String: Any])
        #expect(Set(json.keys) == ["schema", "day", "from_ms", "until_ms", "whole_day", "audit", "studies_received", "reports", "turnaround",
                                   "experts_active", "qc", "critical_results"])
        let critical = try #require(json["critical_results"] as? [String: Any])
        #expect(((critical["acknowledgement_time"] as? [String: Any])?["median_s"] as? NSNumber)?.doubleValue == 600)
        #expect((critical["unacknowledged_at_day_end"] as? NSNumber)?.intValue == 2)
        #expect(((json["turnaround"] as? [String: Any])?["by_priority"] as? [String: Any])?["routine"] != nil)
    }

    @Test func percentilesByNearestRank() {
        let summary = DurationSummary(milliseconds: (1...10).map { Int64($0) * 1000 })
        #expect(summary == DurationSummary(count: 10, medianSeconds: 5.5, p90Seconds: 9, maxSeconds: 10))
        #expect(DurationSummary(milliseconds: [3000, 1000, 2000]) == DurationSummary(count: 3, medianSeconds: 2, p90Seconds: 3, maxSeconds: 3))
        #expect(DurationSummary(milliseconds: []) == nil)
    }

    @Test func figuresOfLiveEntriesReadFromRedis() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix("stats"))
        let study = "1.2.826.0.1.99"
        let chain = AuditTrail(client: client, prefix: prefix, chain: "s:" + study)
        let access = AuditTrail(client: client, prefix: prefix, chain: "access")
        let critical = AuditTrail(client: client, prefix: prefix, chain: ServiceStatistics.criticalResultsChain)
        try await chain.append(actor: AuditActor(.site, "H1"), action: "study.received", study: study, details: "priority=urgent")
        try await access.append(actor: AuditActor(.system, "portal"), action: "auth.login", details: "user=E9;role=expert;address=10.0.0.9")
        try await Task.sleep(for: .milliseconds(20))
        try await chain.append(actor: AuditActor(.expert, "E9"), action: "report.signed", study: study, details: "case=c9;expert=E9;sha256=99")
        try await critical.append(actor: AuditActor(.expert, "E9"), action: "critical.raised", study: study, details: "result=cr-9;source=report;priority=urgent;site=H1")
        try await Task.sleep(for: .milliseconds(20))
        try await critical.append(actor: AuditActor(.site, "H1"), action: "critical.acknowledged", study: study, details: "result=cr-9;site=H1;method=phone;by=x")

        let written = try await chain.entries() + access.entries() + critical.entries()
        let times = Dictionary(uniqueKeysWithValues: written.map { ($0.action, $0.timestampMilliseconds) })
        let since = written.map(\.timestampMilliseconds).min()!, until = written.map(\.timestampMilliseconds).max()! + 1
        // A run that crosses midnight gives two days: add them up.
        let days = try await ServiceStatistics.daily(client: client, prefix: prefix, sinceMilliseconds: since, untilMilliseconds: until)
        #expect(days.reduce(0) { $0 + $1.audit.entries } == 5)
        #expect(days.reduce(0) { $0 + $1.studiesReceived.total } == 1)
        #expect(days.reduce(0) { $0 + $1.reports.signed } == 1)
        let turnaround = days.compactMap { $0.turnaround.byPriority["urgent"] }
        #expect(turnaround.count == 1 && turnaround.first?.maxSeconds == Double(times["report.signed"]! - times["study.received"]!) / 1000)
        let acknowledgement = days.compactMap(\.criticalResults.acknowledgementTime)
        #expect(acknowledgement.count == 1 && acknowledgement.first?.maxSeconds == Double(times["critical.acknowledged"]! - times["critical.raised"]!) / 1000)
        #expect(days.last?.criticalResults.unacknowledgedAtDayEnd == 0)
        #expect(days.contains { $0.experts.total == 1 })
    }
}
