import Foundation
import GridContract
import StudyLifecycle
import Testing

@Suite("Study state machine (pure, in-process)")
struct StudyStateMachineTests {
    let machine = StudyStateMachine()
    let uid = StudyUID(unchecked: "1.2.840.1")
    let e1 = ExpertID(unchecked: "E1")
    let e2 = ExpertID(unchecked: "E2")
    let now: Int64 = 5_000_000

    func record(_ state: StudyState, expert: ExpertID? = nil, last: UInt64? = nil) -> StudyRecord {
        var r = StudyRecord(uid: uid, site: SiteID(unchecked: "H001"), state: state, version: 3, instances: 4, committed: true,
                            createdAt: now - 10_000, updatedAt: now - 1_000, lastInstanceAt: now - 10_000)
        if [.routing, .assigned, .accepted].contains(state) {
            r.caseID = StudyStateMachine.caseID(for: uid, generation: 0)
            r.route = RouteDecision(specialty: "CT/head/neuro", priority: .routine, weight: 3)
        }
        r.expert = expert
        r.lastCaseEvent = last.map { StreamEntryID(milliseconds: $0, sequence: 0) }
        return r
    }

    func event(_ id: UInt64, _ event: CaseEvent, on record: StudyRecord) -> StudyEvent {
        .caseEvent(CaseEventEntry(id: StreamEntryID(milliseconds: id, sequence: 0), caseID: record.caseID!, event: event, time: Int64(id)))
    }

    /// Applies events in order, as the store would (each decision's next record becomes the record).
    func apply(_ events: [StudyEvent], to start: StudyRecord) -> StudyRecord {
        var current = start
        for e in events {
            if let next = machine.decide(current, e, now: now).next { current = next }
        }
        return current
    }

    @Test("every state × event pair decides as the reviewed table says")
    func tableMatchesTheSpec() {
        #expect(TransitionTable.markdown() == transitionTableSpec)
    }

    @Test("docs/LIFECYCLE.md holds the table the code computes")
    func docsHoldTheTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let docs = try String(contentsOf: root.appendingPathComponent("docs/LIFECYCLE.md"), encoding: .utf8)
        let begin = try #require(docs.range(of: "<!-- table:begin -->\n"))
        let end = try #require(docs.range(of: "\n<!-- table:end -->"))
        #expect(String(docs[begin.upperBound..<end.lowerBound]) == TransitionTable.markdown(), "run `radgridctl lifecycle` and paste its table into docs/LIFECYCLE.md")
    }

    /// Defect of the first wave: replaying an old `decline` by E1 moved a study now assigned
    /// to E2 back to `routing`, and the audit chain recorded the false transition.
    @Test func anOldDeclineByAFormerHolderChangesNothing() {
        let assignedToE2 = record(.assigned, expert: e2, last: 300)
        let replay = machine.decide(assignedToE2, event(200, .declined(e1, reason: "workload"), on: assignedToE2), now: now)
        #expect(replay.next == nil && replay.audit == nil)
        // Even with a newer id, a decline by someone who does not hold the case changes no state.
        let foreign = machine.decide(assignedToE2, event(400, .declined(e1, reason: "workload"), on: assignedToE2), now: now)
        #expect(foreign.next?.state == .assigned && foreign.next?.expert == e2 && foreign.audit == nil)
    }

    /// Router events reach the coordinators through a consumer group: several coordinators
    /// may apply them in any order, and a restart replays them. Whatever the order, the study
    /// ends where the router's own history ends.
    @Test(arguments: [
        ([(1, "offer1"), (2, "decline1"), (3, "offer2"), (4, "accept2")], StudyState.accepted, "E2"),
        ([(1, "offer1"), (2, "timeout1"), (3, "offer2")], StudyState.assigned, "E2"),
        ([(1, "offer1"), (2, "accept1"), (3, "release1"), (4, "offer2"), (5, "accept2"), (6, "complete2")], StudyState.reported, "E2"),
        ([(1, "offer1"), (2, "accept1"), (3, "complete1")], StudyState.reported, "E1"),
    ])
    func eventsInAnyOrderEndWhereTheRouterEnds(sequence: [(Int, String)], final: StudyState, expert: String) {
        let start = record(.routing)
        func caseEvent(_ name: String) -> CaseEvent {
            let who = ExpertID(unchecked: "E" + String(name.last!))
            switch name.dropLast() {
            case "offer": return .offered(who)
            case "accept": return .accepted(who)
            case "decline": return .declined(who, reason: "workload")
            case "release": return .released(who, reason: "shift")
            case "timeout": return .acceptTimedOut(who)
            default: return .completed(who, report: "R")
            }
        }
        let events = sequence.map { event(UInt64($0.0), caseEvent($0.1), on: start) }
        var checked = 0
        for order in permutations(events) {
            // Each event also arrives twice (redelivery after a crash).
            let ended = apply(order + order, to: start)
            #expect(ended.state == final, "order \(order.map { "\($0)" })")
            #expect(ended.expert?.rawValue == expert)
            checked += 1
        }
        #expect(checked == (1...events.count).reduce(1, *))
    }

    @Test func aCriticalScreenRaisesThePriorityToStat() {
        var queued = record(.processing)
        queued.priority = .routine
        let critical = ScreeningOutcome(urgency: .critical, score: 0.9, findings: [ScreeningFinding(code: "ct.head.hyperdensity", probability: 0.9, source: "head@1")],
                                        series: 1, screenedImages: 40)
        let decision = machine.decide(queued, .screened(critical, generation: 0), now: now)
        #expect(decision.next?.priority == .stat)
        #expect(decision.next?.screening?.priorityRaisedFrom == .routine)
        #expect(decision.audit?.action == "study.screened.critical")
        let urgent = ScreeningOutcome(urgency: .urgent, score: 0.6, findings: [], series: 1, screenedImages: 40)
        var statStudy = record(.processing)
        statStudy.priority = .stat
        #expect(machine.decide(statStudy, .screened(urgent, generation: 0), now: now).next?.priority == .stat, "never lowered")
    }

    @Test func lostTasksRunAgainThenTheStudyFails() {
        var study = record(.processing)
        let lost = SweepObservation(now: now, queue: QueueObservation(studyTask: .unknown, groupOpen: false, liveInstances: 0))
        for attempt in 1...machine.settings.maxRecoveries {
            let decision = machine.decide(study, .sweep(lost), now: now)
            #expect(decision.next?.state == .queued)
            #expect(decision.next?.generation == attempt)
            #expect(decision.effects == [.enqueueTasks(generation: attempt)])
            study = decision.next!
        }
        let final = machine.decide(study, .sweep(lost), now: now)
        #expect(final.next?.state == .failed)
        #expect(final.next?.failure?.code == StudyFailure.tasksLost)
        // Live tasks: nothing to do but look again later.
        let alive = machine.decide(record(.processing), .sweep(SweepObservation(now: now, queue: QueueObservation(studyTask: .live, groupOpen: false, liveInstances: 0))), now: now)
        #expect(alive.next == nil && alive.effects.isEmpty && alive.settle == .at(now + machine.settings.liveCheckEvery))
    }

    @Test func aCaseSnapshotOlderThanTheAppliedEventsIsIgnored() {
        let study = record(.assigned, expert: e2, last: 500)
        let old = CaseObservation(state: .waiting, asOf: StreamEntryID(milliseconds: 400, sequence: 0))
        let decision = machine.decide(study, .sweep(SweepObservation(now: now, router: old)), now: now)
        #expect(decision.next == nil)
        let fresh = CaseObservation(state: .waiting, asOf: StreamEntryID(milliseconds: 600, sequence: 0))
        let reconciled = machine.decide(study, .sweep(SweepObservation(now: now, router: fresh)), now: now)
        #expect(reconciled.next?.state == .routing && reconciled.next?.expert == nil)
        #expect(reconciled.next?.lastCaseEvent == StreamEntryID(milliseconds: 600, sequence: 0))
    }

    /// Defect of the first wave: stable age counted from the last stored instance while the
    /// gateway stored nothing until a whole request body had arrived, so a slow upload's
    /// instances arrived "late". The sweep does not commit while the site is uploading.
    @Test func stableAgeWaitsForAnUploadInProgress() {
        var open = record(.received)
        open.committed = false
        let quietLongEnough = now + machine.settings.stableAge
        let uploading = machine.decide(open, .sweep(SweepObservation(now: quietLongEnough, siteUploading: true)), now: quietLongEnough)
        #expect(uploading.next == nil && uploading.settle == .at(quietLongEnough + 1000))
        let done = machine.decide(open, .sweep(SweepObservation(now: quietLongEnough, siteUploading: false)), now: quietLongEnough)
        #expect(done.next?.committed == true && done.effects == [.announceCommit])
    }

    @Test func lateInstancesAreAuditedOnTheStudy() {
        let routed = record(.routing)
        let decision = machine.decide(routed, .lateInstance(SOPInstanceUID(unchecked: "1.2.9")), now: now)
        #expect(decision.audit?.action == "study.lateInstance")
        #expect(decision.next?.state == .routing)
    }

    @Test func aStudyWithoutInstancesFailsAtFanOut() {
        var empty = record(.received)
        empty.instances = 0
        let decision = machine.decide(empty, .fanOut, now: now)
        #expect(decision.next?.state == .failed && decision.next?.failure?.code == StudyFailure.noInstances)
    }

    @Test func reportedStudiesKeepTheirBlobsWhenAskedTo() {
        var settings = LifecycleSettings()
        settings.deleteBlobsWhenReported = false
        let keeping = StudyStateMachine(settings: settings)
        let accepted = record(.accepted, expert: e1, last: 10)
        let decision = keeping.decide(accepted, event(20, .completed(e1, report: "R"), on: accepted), now: now)
        #expect(decision.next?.state == .reported && decision.effects.isEmpty)
    }

    @Test func caseIDsAreOpaqueStableAndPerGeneration() {
        let a = StudyStateMachine.caseID(for: uid, generation: 0)
        #expect(a == StudyStateMachine.caseID(for: uid, generation: 0))
        #expect(a != StudyStateMachine.caseID(for: uid, generation: 1))
        #expect(!a.rawValue.contains("1.2.840"))
        #expect(a.rawValue.count == 25 && a.rawValue.hasPrefix("c"))
    }

    func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        var out: [[T]] = []
        for (i, item) in items.enumerated() {
            var rest = items
            rest.remove(at: i)
            for tail in permutations(rest) { out.append([item] + tail) }
        }
        return out
    }
}
