import GridContract

/// The state machine's table of transitions, computed from `StudyStateMachine` itself on a
/// fixed set of probes: docs/LIFECYCLE.md holds it, and a test fails when code and docs part.
///
/// Rows are events, columns are states. A cell reads `→ state` (a transition), `·` (the
/// record is updated, the state stays), `=` (no change, only effects), `—` (nothing
/// happens); `(E2)` names a new holder, `(gen 1)` a new task generation; then the effects:
/// `+enqueue`, `+submit`, `+announce`, `+blobs` (delete them), `+expire`, `+metric`.
public enum TransitionTable {
    /// One column: a state, and the record the probes are applied to.
    public struct Column: Sendable {
        public let title: String
        public let record: StudyRecord
    }

    /// One row: an event, built for the record of each column.
    public struct Row: Sendable {
        public let title: String
        public let event: @Sendable (StudyRecord) -> StudyEvent
    }

    public static let now: Int64 = 1_000_000_000
    static let study = StudyUID(unchecked: "1.2.3")
    static let site = SiteID(unchecked: "H001")
    static let caseID = StudyStateMachine.caseID(for: study, generation: 0)
    static let otherCase = CaseID(unchecked: "c000000000000000000000000")
    static let holder = ExpertID(unchecked: "E1")
    static let other = ExpertID(unchecked: "E2")
    static let route = RouteDecision(specialty: "CT/head/neuro", priority: .routine, weight: 3)
    static let screening = ScreeningOutcome(urgency: .routine, score: 0.1, findings: [], series: 1, screenedImages: 10)

    public static let columns: [Column] = {
        func record(_ state: StudyState, committed: Bool = true, expert: ExpertID? = nil, blobsDeleted: Bool = false) -> StudyRecord {
            var r = StudyRecord(uid: study, site: site, state: state, version: 7, priority: .routine, modality: "CT", bodyPart: "HEAD", instances: 10,
                                committed: committed, createdAt: now - 60_000, updatedAt: now - 1_000, lastInstanceAt: now - 60_000)
            if [.routing, .assigned, .accepted, .reported].contains(state) {
                r.caseID = caseID
                r.route = route
                r.screening = screening
                r.lastCaseEvent = StreamEntryID(milliseconds: 100, sequence: 0)
            }
            if state == .screened { r.screening = screening }
            r.expert = expert
            r.blobsDeleted = blobsDeleted
            if state.isTerminal && state != .reported { r.failure = StudyFailure("study.example") }
            return r
        }
        return [
            Column(title: "received (open)", record: record(.received, committed: false)),
            Column(title: "received (committed)", record: record(.received)),
            Column(title: "queued", record: record(.queued)),
            Column(title: "processing", record: record(.processing)),
            Column(title: "screened", record: record(.screened)),
            Column(title: "routing", record: record(.routing)),
            Column(title: "assigned (E1)", record: record(.assigned, expert: holder)),
            Column(title: "accepted (E1)", record: record(.accepted, expert: holder)),
            Column(title: "reported", record: record(.reported, expert: holder)),
            Column(title: "failed", record: record(.failed)),
            Column(title: "quarantined", record: record(.quarantined)),
            Column(title: "not-routable", record: record(.notRoutable)),
        ]
    }()

    static func caseEvent(_ event: CaseEvent, id: UInt64 = 200, case caseID: CaseID = caseID) -> StudyEvent {
        .caseEvent(CaseEventEntry(id: StreamEntryID(milliseconds: id, sequence: 0), caseID: caseID, event: event, time: Int64(id)))
    }

    /// What the sweeper sees when all is well for the study's state.
    static func quiet(_ record: StudyRecord) -> SweepObservation {
        var seen = SweepObservation(now: now, siteUploading: false)
        switch record.state {
        case .received: seen.now = record.lastInstanceAt + 1_000
        case .queued, .processing: seen.queue = QueueObservation(studyTask: .unknown, groupOpen: true, liveInstances: 3)
        case .screened: seen.route = route
        case .routing: seen.router = CaseObservation(state: .waiting, asOf: StreamEntryID(milliseconds: 150, sequence: 0))
        case .assigned: seen.router = CaseObservation(state: .offered, expert: record.expert, asOf: StreamEntryID(milliseconds: 150, sequence: 0))
        case .accepted: seen.router = CaseObservation(state: .accepted, expert: record.expert, asOf: StreamEntryID(milliseconds: 150, sequence: 0))
        default: break
        }
        return seen
    }

    /// What the sweeper sees when the study's follow-up was lost (or its time is up).
    static func lost(_ record: StudyRecord) -> SweepObservation {
        var seen = SweepObservation(now: now + 40 * 86_400_000)
        switch record.state {
        case .received: seen.now = record.lastInstanceAt + 60_000
        case .queued, .processing: seen.queue = QueueObservation(studyTask: .unknown, groupOpen: false, liveInstances: 0)
        case .screened: seen.route = route
        case .routing, .assigned, .accepted: seen.router = CaseObservation(state: .missing, asOf: StreamEntryID(milliseconds: 150, sequence: 0))
        default: break
        }
        return seen
    }

    public static let rows: [Row] = [
        Row(title: "commit") { _ in .commit(reason: "explicit") },
        Row(title: "fan-out (committed stream)") { _ in .fanOut },
        Row(title: "late instance") { _ in .lateInstance(SOPInstanceUID(unchecked: "1.2.3.9")) },
        Row(title: "instance started") { .instanceStarted(generation: $0.generation) },
        Row(title: "instance started, old generation") { .instanceStarted(generation: $0.generation - 1) },
        Row(title: "screened") { .screened(screening, generation: $0.generation) },
        Row(title: "screened, old generation") { .screened(screening, generation: $0.generation - 1) },
        Row(title: "no readable instance") { .unreadable([FailedInstance(sop: SOPInstanceUID(unchecked: "1.2.3.1"), code: "dicom.malformed")], generation: $0.generation) },
        Row(title: "no diagnostic image") { .nonDiagnostic(nonImageInstances: 2, generation: $0.generation) },
        Row(title: "study task dead-lettered") { .taskDead(.study, reason: "poison", generation: $0.generation) },
        Row(title: "instance task dead-lettered") { .taskDead(.instance, reason: "poison", generation: $0.generation) },
        Row(title: "hand-off (screened stream)") { _ in .handOff(route) },
        Row(title: "router: offered to E2") { _ in caseEvent(.offered(other)) },
        Row(title: "router: offered to E1, replayed (old id)") { _ in caseEvent(.offered(holder), id: 50) },
        Row(title: "router: accepted by E1") { _ in caseEvent(.accepted(holder)) },
        Row(title: "router: declined by E1 (holder)") { _ in caseEvent(.declined(holder, reason: "workload")) },
        Row(title: "router: declined by E2 (not holder)") { _ in caseEvent(.declined(other, reason: "workload")) },
        Row(title: "router: accept timeout of E1") { _ in caseEvent(.acceptTimedOut(holder)) },
        Row(title: "router: completed by E1") { _ in caseEvent(.completed(holder, report: "R1")) },
        Row(title: "router: cancelled") { _ in caseEvent(.cancelled(reason: "withdrawn")) },
        Row(title: "router: widened (no study change)") { _ in caseEvent(.widened(level: 1)) },
        Row(title: "router: another case's event") { _ in caseEvent(.offered(other), case: otherCase) },
        Row(title: "sweep, all well") { .sweep(quiet($0)) },
        Row(title: "sweep, follow-up lost / time up") { .sweep(lost($0)) },
        Row(title: "operator requeue") { _ in .requeue(reason: "fixed") },
    ]

    /// One cell: what the machine decides for `row` on `column`'s record.
    public static func cell(_ row: Row, _ column: Column, machine: StudyStateMachine = StudyStateMachine()) -> String {
        let record = column.record
        let decision = machine.decide(record, row.event(record), now: now)
        var text: String
        if let next = decision.next {
            text = next.state != record.state ? "→ \(next.state.rawValue)" : "·"
            if next.expert != record.expert, let expert = next.expert { text += " (\(expert))" }
            if next.generation != record.generation { text += " (gen \(next.generation))" }
        } else {
            text = decision.effects.isEmpty ? "—" : "="
        }
        for effect in decision.effects {
            switch effect {
            case .announceCommit: text += " +announce"
            case .enqueueTasks: text += " +enqueue"
            case .submitCase: text += " +submit"
            case .deleteBlobs: text += " +blobs"
            case .expire: text += " +expire"
            case .recordAssignment: text += " +metric"
            }
        }
        return text
    }

    /// The whole table as Markdown.
    public static func markdown(machine: StudyStateMachine = StudyStateMachine()) -> String {
        var lines = ["| event | " + columns.map(\.title).joined(separator: " | ") + " |"]
        lines.append("| --- |" + String(repeating: " --- |", count: columns.count))
        for row in rows {
            lines.append("| \(row.title) | " + columns.map { cell(row, $0, machine: machine) }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}
