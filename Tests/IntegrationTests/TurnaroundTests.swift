import Coordinator
import GridContract
import RadGridCore
import RedisClient
@testable import Routing
import Testing
import TestSupport

@Suite struct TurnaroundTests {
    static func info(offered: Int64?, accepted: Int64?, completed: Int64?, deadline: Int64) -> CaseInfo {
        CaseInfo(id: "C", specialty: "CT/head", site: "H001", region: nil, priority: "stat", effectivePriority: "stat", weight: 3, state: "completed",
                 expert: "E1", level: 0, submitted: 0, deadline: deadline, escalated: false, offers: 1, declines: 0, excluded: [], acceptBy: nil,
                 report: nil, firstOfferedAt: offered, acceptedAt: accepted, completedAt: completed)
    }

    @Test func stagesAreMeasuredFromTheCaseAndTheStudy() {
        let d = Turnaround.durations(receivedAt: 1_000, info: Self.info(offered: 61_000, accepted: 181_000, completed: 1_381_000, deadline: 0))
        #expect(d == [.receivedToAssigned: 60_000, .assignedToAccepted: 120_000, .acceptedToFinal: 1_200_000, .endToEnd: 1_380_000])
        #expect(Turnaround.durations(receivedAt: 0, info: Self.info(offered: nil, accepted: nil, completed: nil, deadline: 0)).isEmpty)
    }

    @Test func summaryCountsBucketsAndBreaches() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let ledger = Turnaround(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix("tat")))
        // Nine STAT reads signed 20 min after arrival (within the 30 min SLA), one after 50 (breached).
        for n in 0..<10 {
            let total: Int64 = n == 9 ? 50 * 60_000 : 20 * 60_000
            try await ledger.record(priority: .stat, receivedAt: 0,
                                    info: Self.info(offered: 60_000, accepted: 120_000, completed: total, deadline: 30 * 60_000))
        }
        let summary = try await ledger.summary()
        #expect(summary.reported == ["stat": 10])
        #expect(summary.breaches == ["stat": 1])
        let end = try #require(summary.stages["stat"]?["end_to_end"])
        #expect(end.count == 10 && end.p50Minutes == 30 && end.p95Minutes == 60)
        #expect(abs(end.meanMinutes - 23) < 1e-9)
        #expect(summary.stages["stat"]?["received_to_assigned"]?.p95Minutes == 1)
    }
}
