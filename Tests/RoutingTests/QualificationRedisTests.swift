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
