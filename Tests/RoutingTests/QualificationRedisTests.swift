import Foundation
import GridContract
import RadGridCore
import Testing
@testable import Routing

/// Credentials as hard rules through the real scripts: who is never offered a case, the
/// explanation each decision keeps, and the exclusions of a second read.
@Suite(.serialized) struct QualificationRedisTests {
    @Test func expertsFailingARuleAreNeverOfferedAndTheExplanationSaysWhy() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        let now = f.clock.now
        var noLicence = Fixture.expert("NOLIC", capacity: 100)
        noLicence.licence = nil
        var lapsed = Fixture.expert("LAPSED", capacity: 100)
        lapsed.licence = Licence(number: "L-2", expires: now - 1)
        var junior = Fixture.expert("JUNIOR", capacity: 100)
        junior.practiceSince = now - 2 * 365 * 86_400_000
        var suspended = Fixture.expert("SUSP", capacity: 100)
        suspended.suspended = true
        var subSuspended = Fixture.expert("SUBSUSP", capacity: 100)
        subSuspended.suspendedSpecialties = [try Specialty("CT/head/neuro")]
        let qualified = Fixture.expert("OK", capacity: 6)
        try await f.add([noLicence, lapsed, junior, suspended, subSuspended, qualified])
        // Capacity 6 and weight 3: the qualified expert takes two, then the case waits,
        // however much room the others have.
        #expect(try await f.submit("C1").expert == "OK")
        #expect(try await f.submit("C2").expert == "OK")
        #expect(try await f.submit("C3") == .waiting)

        let explanation = try #require(try await f.router.explain(caseID: "C3"))
        let reasons = Dictionary(uniqueKeysWithValues: explanation.roster.map { ($0.expert, $0.reasons) })
        #expect(reasons["NOLIC"]?.contains("licence_missing") == true)
        #expect(reasons["LAPSED"]?.contains("licence_expired") == true)
        #expect(reasons["JUNIOR"]?.contains("practice_years") == true)
        #expect(reasons["SUSP"]?.contains("suspended") == true)
        #expect(reasons["SUBSUSP"]?.contains("suspended_specialty") == true)
        #expect(reasons["OK"] == ["full"])
        let decision = try #require(explanation.decisions.last)
        #expect(decision.outcome == "waiting")
        // Only the qualified expert is in the pool, and a full expert scores above the range
        // the scan reads: nobody was considered, and the roster says why.
        #expect(decision.candidates.isEmpty)
        #expect(decision.pools == ["CT/head/neuro@H001"])

        let first = try #require(try await f.router.explain(caseID: "C1")).decisions
        #expect(first.count == 1 && first[0].outcome == "offered" && first[0].expert == "OK")
        #expect(first[0].candidates == [RoutingExplanation.Candidate(expert: "OK", reason: "offered")])

        // A general head CT case may go to the sub-suspended expert (suspended for neuro only).
        #expect(try await f.submit("G1", "CT/head").expert == "SUBSUSP")
    }

    @Test func aLicenceLapsingMidShiftStopsOffersAtThatInstant() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        var expert = Fixture.expert("E1", capacity: 30)
        expert.licence = Licence(number: "L-3", expires: f.clock.now + 60_000)
        try await f.add([expert])
        #expect(try await f.submit("C1").expert == "E1")
        f.clock.advance(ms: 60_000)
        // No sweep ran: the assign script itself prunes on the availability the licence capped.
        #expect(try await f.submit("C2") == .waiting)
        let decision = try #require(try await f.router.explain(caseID: "C2")?.decisions.last)
        #expect(decision.candidates == [RoutingExplanation.Candidate(expert: "E1", reason: "unavailable")])
        // Renewed: the roster change is audited with the field that changed, never its value.
        expert.licence = Licence(number: "L-3", expires: f.clock.now + 365 * 86_400_000)
        try await f.router.upsertExperts([expert])
        let upsert = try #require(try await f.audit().last { $0.action == "expert_upsert" })
        #expect(upsert.details["changed"] == "licence")
        #expect(!upsert.details.values.contains { $0.contains("L-3") })
        _ = try await f.router.drainWaiting()
        #expect(try await f.state("C2").expert == "E1")
    }

    @Test func explanationNamesEveryReasonTheScanMet() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([
            Fixture.expert("FULL", capacity: 2), Fixture.expert("HOME", capacity: 50, home: "H001"),
            Fixture.expert("DECL", capacity: 40), Fixture.expert("PICK", capacity: 45),
        ])
        let offered = try #require(try await f.submit("C1").expert)
        #expect(offered == "DECL" || offered == "PICK")
        if offered == "DECL" {
            _ = try await f.router.decline(caseID: "C1", expert: "DECL", reason: .workload)
        } else {
            _ = try await f.router.decline(caseID: "C1", expert: "PICK", reason: .workload)
        }
        let explanation = try #require(try await f.router.explain(caseID: "C1"))
        #expect(explanation.decisions.count == 2)
        let second = explanation.decisions[1]
        let byExpert = Dictionary(uniqueKeysWithValues: second.candidates.map { ($0.expert, $0.reason) })
        #expect(byExpert["FULL"] == "full")
        #expect(byExpert["HOME"] == "conflict")
        #expect(byExpert[offered] == "declined")
        #expect(second.expert != nil && byExpert[second.expert!] == "offered")
    }

    @Test func aSecondReadExcludesTheFirstReaderAndTheirHospital() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([
            Fixture.expert("FIRST", capacity: 40, home: "H007"), Fixture.expert("COLLEAGUE", capacity: 60, home: "H007"),
            Fixture.expert("OTHER", capacity: 20, home: "H009"),
        ])
        var request = CaseRequest(id: "C1.qc", specialty: try Specialty("CT/head/neuro"), site: "H001", priority: .routine, weight: 3)
        request.kind = .review
        request.excludedExperts = ["FIRST"]
        request.avoidHomeSite = "H007"
        #expect(try await f.router.submitCase(request).expert == "OTHER")
        let info = try await f.state("C1.qc")
        #expect(info.kind == .review)
        let decision = try #require(try await f.router.explain(caseID: "C1.qc")?.decisions.first)
        let byExpert = Dictionary(uniqueKeysWithValues: decision.candidates.map { ($0.expert, $0.reason) })
        #expect(byExpert["FIRST"] == "declined")
        #expect(byExpert["COLLEAGUE"] == "same_hospital")
        // When OTHER declines, nobody else may take it: it waits rather than break the rule.
        #expect(try await f.router.decline(caseID: "C1.qc", expert: "OTHER", reason: .workload) == .waiting)
    }
}

/// The balance options: least work in hand, and a cap on cases in hand.
@Suite(.serialized) struct BalanceRedisTests {
    @Test func balanceByLoadPrefersTheLeastWorkInHandWhateverTheCapacity() async throws {
        let f = try await Fixture.make { $0.balanceBy = .load }
        defer { f.close() }
        try await f.add([Fixture.expert("BIG", capacity: 40), Fixture.expert("SMALL", capacity: 10)])
        var counts: [String: Int] = [:]
        for n in 0..<6 { counts[try #require(try await f.submit("C\(n)", weight: 2).expert), default: 0] += 1 }
        // By share of capacity BIG would take 4 or 5 of 6; by work in hand they split evenly.
        #expect(counts == ["BIG": 3, "SMALL": 3])
    }

    @Test func maxOpenCasesKeepsTheRestWaitingForWhoeverFreesFirst() async throws {
        let f = try await Fixture.make { $0.maxOpenCases = 1 }
        defer { f.close() }
        try await f.add([Fixture.expert("E1", capacity: 40), Fixture.expert("E2", capacity: 40)])
        let a = try #require(try await f.submit("A").expert)
        let b = try #require(try await f.submit("B").expert)
        #expect(a != b)
        #expect(try await f.submit("R", priority: .routine) == .waiting)
        #expect(try await f.submit("S", priority: .stat) == .waiting, "no extra case for STAT: it waits for the first to finish")
        let waiting = try #require(try await f.router.explain(caseID: "S")?.decisions.last)
        #expect(Set(waiting.candidates.map(\.reason)) == ["full"])
        try await f.router.accept(caseID: "B", expert: b)
        try await f.router.complete(caseID: "B", expert: b, reportReference: "r")
        _ = try await f.router.drainWaiting()
        // The first to finish takes the STAT case first, though the routine one waited longer.
        #expect(try await f.state("S").expert == b)
        #expect(try await f.state("R").state == "waiting")
    }
}
