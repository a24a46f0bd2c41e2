import Audit
import Foundation
import GridContract
import Logging
import RadGridCore
import RedisClient
import Synchronization
import Testing
import TestSupport
@testable import Routing

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let value: Mutex<Int64>
    init(_ start: Int64) { value = Mutex(start) }
    var now: Int64 { value.withLock { $0 } }
    func advance(ms: Int64) { value.withLock { $0 += ms } }
    func set(_ ms: Int64) { value.withLock { $0 = ms } }
}

/// One router on a private key prefix of the shared test Redis.
struct Fixture {
    let router: ExpertRouter
    let clock: ManualClock
    let client: RedisClient

    static let monday = ShiftTests.ms("2026-11-23T12:00:00Z")

    static func make(start: Int64 = monday, configure: (inout RoutingConfig) -> Void = { _ in }) async throws -> Fixture {
        let client = try RedisClient(url: try await TestRedis.url())
        let clock = ManualClock(start)
        var config = RoutingConfig.standard
        configure(&config)
        let router = ExpertRouter(redis: client, prefix: KeyPrefix(TestRedis.uniquePrefix("rt")), config: config, actor: "test",
                                  clock: { clock.now })
        return Fixture(router: router, clock: clock, client: client)
    }

    static func expert(_ id: String, _ specialties: [String] = ["CT/head/neuro"], sites: [String] = ["H001"], capacity: Int = 10,
                       home: String? = nil, expires: [String: Int64] = [:], zone: String = "UTC", shifts: [String] = []) -> Expert {
        Expert(id: id, name: "Dr. \(id)", specialties: specialties.map { try! Specialty($0) },
               credentials: sites.map { Credential(scope: $0, expires: expires[$0]) }, capacity: capacity,
               timeZone: zone, shifts: shifts.map { try! ShiftWindow($0) }, homeSite: home, licence: Licence(number: "L-1"), practiceSince: 0)
    }

    func add(_ experts: [Expert]) async throws {
        try await router.upsertExperts(experts, presence: .online, heartbeatUntil: clock.now + 30 * 86_400_000)
    }

    func submit(_ id: String, _ spec: String = "CT/head/neuro", site: String = "H001", priority: Priority = .routine, weight: Int = 3) async throws -> RouteOutcome {
        try await router.submitCase(CaseRequest(id: id, specialty: try Specialty(spec), site: site, priority: priority, weight: weight))
    }

    func load(_ id: String) async throws -> Int { try await router.expertState(id)?.load ?? -1 }

    func state(_ caseID: String) async throws -> CaseInfo { try #require(await router.caseInfo(caseID)) }

    func audit() async throws -> [AuditEntry] { try await router.allAuditEntries() }

    func close() { client.shutdown() }
}

@Suite(.serialized) struct RouterRedisTests {
    @Test func lowestLoadRatioWinsAndTiesSpread() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("E1", capacity: 10), Fixture.expert("E2", capacity: 20), Fixture.expert("E3", capacity: 30)])
        var counts: [String: Int] = [:]
        for index in 0..<12 {
            let before = try await f.router.expertStates(["E1", "E2", "E3"])
            let ratios = Dictionary(uniqueKeysWithValues: before.map { ($0.expert.id, Double($0.load) / Double($0.expert.capacity)) })
            let outcome = try await f.submit("C\(index)", weight: 2)
            let chosen = try #require(outcome.expert)
            counts[chosen, default: 0] += 1
            #expect(ratios[chosen]! <= ratios.values.min()! + 1e-9, "picked \(chosen) with ratio \(ratios[chosen]!) over \(ratios)")
        }
        // Proportional to capacity: 10:20:30 -> 2:4:6 cases of weight 2.
        #expect(counts == ["E1": 2, "E2": 4, "E3": 6])
        #expect(try await f.load("E3") == 12)
    }

    @Test func capacityIsHardExceptStatMargin() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("E1", capacity: 10)])
        #expect(try await f.submit("R1", weight: 4).expert == "E1")
        #expect(try await f.submit("R2", weight: 4).expert == "E1")
        #expect(try await f.submit("R3", weight: 4) == .waiting)
        #expect(try await f.submit("S1", priority: .stat, weight: 4).expert == "E1") // 12 <= 10 * 1.25
        #expect(try await f.submit("S2", priority: .stat, weight: 4) == .waiting)   // 16 > 12.5
        #expect(try await f.load("E1") == 12)
        #expect(try await f.submit("R1", weight: 4) == .duplicate(state: "offered"))
        let waiting = try await f.router.waitingCounts()
        #expect(waiting[.stat] == 1 && waiting[.routine] == 1)
        let counts = try await f.router.redis.send("HGET", RedisArgument(f.router.keys.stats), "submitted")
        #expect(counts.int == 5)
    }

    @Test func specialtyCredentialsExpiryAndConflictRule() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        let now = f.clock.now
        try await f.add([
            Fixture.expert("NEURO1", sites: ["H001"], home: "H002"),
            Fixture.expert("MSK1", ["MR/msk"], sites: ["H001", "H002"]),
            Fixture.expert("NEURO2", sites: ["H002"], home: "H001", expires: ["H002": now + 3_600_000]),
        ])
        // H002: NEURO1 has no credential there, MSK1 lacks the specialty.
        #expect(try await f.submit("A", site: "H002").expert == "NEURO2")
        // H001: NEURO2's home site is H001 (conflict), so NEURO1.
        #expect(try await f.submit("B", site: "H001").expert == "NEURO1")
        // After NEURO2's credential expires (no sweep ran), H002 cases find nobody.
        f.clock.advance(ms: 2 * 3_600_000)
        #expect(try await f.submit("C", site: "H002") == .waiting)
        // Region credentials count for the region's sites.
        try await f.add([Fixture.expert("NEURO3", sites: ["region:EU-N"])])
        let outcome = try await f.router.submitCase(CaseRequest(id: "D", specialty: try Specialty("CT/head/neuro"), site: "H009", region: "EU-N", priority: .urgent, weight: 3))
        #expect(outcome.expert == "NEURO3")
        #expect(try await f.submit("E", "MR/msk", site: "H002").expert == "MSK1")
    }

    @Test func conflictRuleCanBeTurnedOff() async throws {
        let f = try await Fixture.make { $0.conflictOfInterest = false }
        defer { f.close() }
        try await f.add([Fixture.expert("E1", home: "H001")])
        #expect(try await f.submit("A").expert == "E1")
    }

    @Test func shiftBoundaryInExpertTimeZone() async throws {
        // 13:59Z is 08:59 in New York: one minute before the shift.
        let f = try await Fixture.make(start: ShiftTests.ms("2026-11-23T13:59:00Z"))
        defer { f.close() }
        try await f.add([Fixture.expert("NY", zone: "America/New_York", shifts: ["Mon-Fri 09:00-17:00"])])
        #expect(try await f.submit("A") == .waiting)
        #expect(try await f.router.nextDueTime() == ShiftTests.ms("2026-11-23T14:00:00Z"))
        f.clock.set(ShiftTests.ms("2026-11-23T14:00:00Z"))
        #expect(try await f.router.sweepDue() == 1)
        let wake = try await f.router.redis.send("LLEN", RedisArgument(f.router.keys.wake))
        #expect((wake.int ?? 0) > 0, "coming on shift must wake the routers")
        #expect(try await f.router.drainWaiting() == 1)
        #expect(try await f.state("A").expert == "NY")
        // 17:00 New York = 22:00Z: off shift even though no sweep has run yet.
        f.clock.set(ShiftTests.ms("2026-11-23T22:00:00Z"))
        #expect(try await f.submit("B") == .waiting)
        let entries = try await f.audit()
        #expect(entries.contains { $0.action == "expert_available" && $0.details["expert"] == "NY" })
    }

    @Test func presenceAndHeartbeat() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.router.upsertExperts([Fixture.expert("E1")])
        #expect(try await f.submit("A") == .waiting) // never came online
        try await f.router.heartbeat("E1", ttlMilliseconds: 60_000)
        #expect(try await f.router.drainWaiting() == 1)
        try await f.router.setPresence("E1", .away)
        #expect(try await f.submit("B") == .waiting)
        try await f.router.heartbeat("E1", ttlMilliseconds: 60_000)
        f.clock.advance(ms: 61_000) // heartbeat lapsed
        #expect(try await f.submit("C") == .waiting)
        let state = try #require(await f.router.expertState("E1"))
        #expect(state.openCases == 1 && state.load == 3)
    }

    @Test func declineReassignsAndExcludes() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("E1"), Fixture.expert("E2")])
        let first = try #require(try await f.submit("A").expert)
        let second = first == "E1" ? "E2" : "E1"
        await #expect(throws: RoutingError.self) { try await f.router.decline(caseID: "A", expert: second, reason: .workload) }
        #expect(try await f.router.decline(caseID: "A", expert: first, reason: .outsideSpecialty) == .assigned(expert: second))
        #expect(try await f.load(first) == 0)
        #expect(try await f.router.decline(caseID: "A", expert: second, reason: .workload) == .waiting)
        let info = try await f.state("A")
        #expect(info.state == "waiting" && Set(info.excluded) == ["E1", "E2"] && info.declines == 2)
        let declines = try await f.audit().filter { $0.action == "decline" }
        #expect(declines.map { $0.details["reason"] } == ["outside-specialty", "workload"])
        #expect(declines.allSatisfy { $0.actor.hasPrefix("expert:") })
    }

    @Test func everyRoutingStepIsChainedIntoTheAuditTrailExactlyOnce() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("E1"), Fixture.expert("E2")])
        let first = try #require(try await f.submit("A").expert)
        _ = try await f.router.decline(caseID: "A", expert: first, reason: .workload)
        let second = first == "E1" ? "E2" : "E1"
        try await f.router.accept(caseID: "A", expert: second)
        try await f.router.complete(caseID: "A", expert: second, reportReference: "R-1")
        let chainer = f.router.auditChainer(logger: Logger(label: "test"))
        try await chainer.prepare()
        let operational = try await f.audit()
        #expect(try await chainer.chainAvailable(consumer: "c1") == operational.count)
        #expect(try await chainer.chainAvailable(consumer: "c2") == 0)
        let chained = try await chainer.trail.entries()
        #expect(chained.map(\.action) == operational.map { "route." + $0.action })
        #expect(chained.filter { $0.study == "A" }.map(\.action).suffix(4) == ["route.decline", "route.offer", "route.accept", "route.complete"])
        let verification = try await AuditTrail.verify(client: f.client, prefix: f.router.prefix)
        #expect(verification.isIntact)
        #expect(verification.entries == operational.count)
    }

    @Test func acceptTimeoutReassigns() async throws {
        let f = try await Fixture.make { $0.acceptTimeoutSeconds = 60 }
        defer { f.close() }
        try await f.add([Fixture.expert("E1"), Fixture.expert("E2")])
        let first = try #require(try await f.submit("A").expert)
        f.clock.advance(ms: 59_000)
        #expect(try await f.router.processDueTimers() == 0)
        f.clock.advance(ms: 2_000)
        #expect(try await f.router.processDueTimers() == 1)
        let info = try await f.state("A")
        #expect(info.state == "offered" && info.expert != first && info.excluded == [first])
        #expect(try await f.load(first) == 0)
        // Accepted cases do not time out on acceptance.
        try await f.router.accept(caseID: "A", expert: info.expert!)
        f.clock.advance(ms: 120_000)
        _ = try await f.router.processDueTimers()
        #expect(try await f.state("A").state == "accepted")
        #expect(try await f.audit().contains { $0.action == "accept_timeout" && $0.details["expert"] == first })
    }

    /// The worklist index (`route:{rt}:held`) follows the holder through every step: offer,
    /// decline, accept timeout, acceptance, completion and cancellation.
    @Test func heldCasesFollowTheHolder() async throws {
        let f = try await Fixture.make { $0.acceptTimeoutSeconds = 60 }
        defer { f.close() }
        try await f.add([Fixture.expert("E1"), Fixture.expert("E2"), Fixture.expert("E10")])
        let first = try #require(try await f.submit("A").expert)
        #expect(try await f.router.heldCases(expert: first) == ["A"])
        // "E1" must not see "E10"'s cases through the prefix match.
        let second = try #require(try await f.router.decline(caseID: "A", expert: first, reason: .workload).expert)
        #expect(try await f.router.heldCases(expert: first).isEmpty)
        #expect(try await f.router.heldCases(expert: second) == ["A"])
        f.clock.advance(ms: 61_000)
        _ = try await f.router.processDueTimers()
        let third = try #require(try await f.state("A").expert)
        #expect(try await f.router.heldCases(expert: second).isEmpty)
        #expect(try await f.router.heldCases(expert: third) == ["A"])
        try await f.router.accept(caseID: "A", expert: third)
        #expect(try await f.router.heldCases(expert: third) == ["A"])
        try await f.router.complete(caseID: "A", expert: third, reportReference: "report:abc")
        for id in ["E1", "E2", "E10"] { #expect(try await f.router.heldCases(expert: id).isEmpty) }
        let holder = try #require(try await f.submit("B").expert)
        #expect(try await f.router.heldCases(expert: holder) == ["B"])
        try await f.router.cancel(caseID: "B")
        #expect(try await f.router.heldCases(expert: holder).isEmpty)
        let infos = try await f.router.caseInfos(["A", "missing", "B"])
        #expect(infos.map { $0?.state } == ["completed", nil, "cancelled"])
    }

    @Test func waitingCaseTakesFreedCapacityInPriorityOrder() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("E1", capacity: 4)])
        #expect(try await f.submit("A", weight: 4).expert == "E1")
        #expect(try await f.submit("R", weight: 4) == .waiting)
        f.clock.advance(ms: 1000)
        #expect(try await f.submit("U", priority: .urgent, weight: 4) == .waiting)
        try await f.router.accept(caseID: "A", expert: "E1")
        await #expect(throws: RoutingError.self) { try await f.router.complete(caseID: "A", expert: "E1", reportReference: "free text with spaces") }
        try await f.router.complete(caseID: "A", expert: "E1", reportReference: "RPT-1")
        let wake = try await f.router.redis.send("LRANGE", RedisArgument(f.router.keys.wake), "0", "-1")
        #expect(Routing.ExpertRouter.strings(wake).contains("expert:E1"))
        #expect(try await f.router.drainWaiting() == 1)
        #expect(try await f.state("U").expert == "E1") // urgent before the older routine case
        #expect(try await f.state("R").state == "waiting")
        #expect(try await f.state("A").report == "RPT-1")
    }

    @Test func widensToParentSpecialtyAsDeadlineNears() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("GEN", ["CT/head"])])
        #expect(try await f.submit("A", priority: .urgent) == .waiting) // needs CT/head/neuro
        f.clock.advance(ms: 59 * 60_000)
        _ = try await f.router.processDueTimers()
        #expect(try await f.state("A").state == "waiting")
        f.clock.advance(ms: 60_000) // 60 of 120 minutes: level 1 = CT/head
        #expect(try await f.router.processDueTimers() == 1)
        let info = try await f.state("A")
        #expect(info.level == 1 && info.expert == "GEN")
        let entries = try await f.audit()
        #expect(entries.contains { $0.action == "widen" && $0.details["level"] == "1" })
        #expect(entries.contains { $0.action == "offer" && $0.details["pool"] == "CT/head@H001" })
    }

    @Test func routineCasesAgeAndEscalate() async throws {
        let f = try await Fixture.make { $0.ageRoutineAfterMinutes = 10; $0.ageUrgentAfterMinutes = 5 }
        defer { f.close() }
        try await f.add([Fixture.expert("E1", ["MR/msk"], capacity: 4)])
        #expect(try await f.submit("BUSY", "MR/msk", weight: 4).expert == "E1")
        try await f.router.accept(caseID: "BUSY", expert: "E1")
        #expect(try await f.submit("OLD", "MR/msk", weight: 1) == .waiting)
        f.clock.advance(ms: 10 * 60_000)
        _ = try await f.router.processDueTimers()
        #expect(try await f.state("OLD").effectivePriority == "urgent")
        f.clock.advance(ms: 5 * 60_000)
        _ = try await f.router.processDueTimers()
        // Now STAT: may use the capacity margin (4 + 1 <= 5).
        let info = try await f.state("OLD")
        #expect(info.effectivePriority == "stat" && info.priority == "routine")
        #expect(info.expert == "E1")
        // The accepted case breaches its SLA and is escalated.
        f.clock.advance(ms: 24 * 3_600_000)
        _ = try await f.router.processDueTimers()
        let busy = try await f.state("BUSY")
        #expect(busy.escalated && busy.state == "accepted")
        let escalated = try await f.router.redis.send("ZRANGE", RedisArgument(f.router.keys.escalated), "0", "-1")
        #expect(Routing.ExpertRouter.strings(escalated).contains("BUSY"))
        #expect(try await f.audit().contains { $0.action == "sla_breach" && $0.caseID == "BUSY" })
    }

    @Test func cancelReleaseAndRemoval() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        try await f.add([Fixture.expert("E1"), Fixture.expert("E2")])
        let holder = try #require(try await f.submit("A").expert)
        await #expect(throws: RoutingError.self) { try await f.router.removeExpert(holder) }
        try await f.router.cancel(caseID: "A")
        #expect(try await f.load(holder) == 0)
        try await f.router.removeExpert(holder)
        #expect(try await f.router.expertState(holder) == nil)
        let other = holder == "E1" ? "E2" : "E1"
        #expect(try await f.submit("B").expert == other)
        try await f.router.accept(caseID: "B", expert: other)
        #expect(try await f.router.release(caseID: "B", expert: other) == .waiting)
        #expect(try await f.load(other) == 0)
        // No pool still lists the removed expert.
        let pool = try await f.router.redis.send("ZRANGE", RedisArgument(f.router.keys.pool("CT/head/neuro@H001")), "0", "-1")
        #expect(!Routing.ExpertRouter.strings(pool).contains(holder))
    }

    @Test func parallelSubmissionsNeverOverfill() async throws {
        let f = try await Fixture.make()
        defer { f.close() }
        let experts = (1...12).map { Fixture.expert("E\($0)", capacity: 5 + $0) }
        try await f.add(experts)
        let capacity = experts.reduce(0) { $0 + $1.capacity }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in 0..<40 {
                        _ = try await f.submit("P\(worker)-\(index)", priority: index % 7 == 0 ? .stat : .routine, weight: 1 + index % 3)
                    }
                }
            }
            try await group.waitForAll()
        }
        let states = try await f.router.expertStates(experts.map(\.id))
        var total = 0
        for state in states {
            #expect(Double(state.load) <= Double(state.expert.capacity) * 1.25)
            total += state.load
        }
        // Loads equal the weights of the cases they hold; every case is assigned or waiting once.
        var held = 0
        var assigned = 0, waiting = 0
        for worker in 0..<8 {
            for index in 0..<40 {
                let info = try await f.state("P\(worker)-\(index)")
                if info.state == "offered" { held += info.weight; assigned += 1 } else if info.state == "waiting" { waiting += 1 }
            }
        }
        #expect(assigned + waiting == 320)
        #expect(held == total)
        #expect(Double(total) >= Double(capacity) * 0.8) // the grid fills up before cases wait
        let offers = try await f.audit().filter { $0.action == "offer" }
        #expect(offers.count == assigned && Set(offers.map(\.caseID)).count == assigned)
    }
}
