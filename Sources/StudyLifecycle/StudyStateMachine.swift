import Crypto
import GridContract

/// The study lifecycle as a pure function: `(record, event) -> decision`. It reads nothing and
/// writes nothing; the coordinator, the workers, the gateway and `radgridctl` feed it events
/// and carry out its decisions (store the next record if the version still matches, then run
/// the effects). Every state × event pair is covered by in-process tests, replays and stale
/// events included; docs/LIFECYCLE.md holds the table, checked against this code.
///
/// Robustness rests on two rules:
/// - **Router events are ordered.** A study remembers the id of the newest router event it
///   applied; an older or replayed one changes nothing, and an event about an expert who no
///   longer holds the case changes nothing.
/// - **Every change is followed by a sweeper visit** unless the process that made it finishes
///   its follow-up work: the study is due `repairAfter` after any change, and only moved to
///   its idle check once the effects ran. A crash between a change and its effects costs one
///   `repairAfter`, and the sweep re-derives the effects from the state.
public struct StudyStateMachine: Sendable {
    public var settings: LifecycleSettings

    public init(settings: LifecycleSettings = LifecycleSettings()) {
        self.settings = settings
    }

    /// The router's case for a study run: a digest of the UID (routing data never carries the
    /// UID) and, after a requeue, of its generation.
    public static func caseID(for study: StudyUID, generation: Int) -> CaseID {
        let text = generation == 0 ? "radgrid-case:\(study)" : "radgrid-case:\(study)#\(generation)"
        let digest = SHA256.hash(data: Array(text.utf8))
        return CaseID(unchecked: "c" + digest.prefix(12).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined())
    }

    /// When the sweeper should look at a study that is where it should be (its follow-up done).
    public func idleCheck(_ record: StudyRecord, now: Int64) -> Int64 {
        switch record.state {
        case .received:
            return record.committed ? now + settings.repairAfter : max(now + 200, record.lastInstanceAt + settings.stableAge)
        case .queued, .processing, .routing: return now + settings.liveCheckEvery
        case .screened: return now + settings.repairAfter
        case .assigned, .accepted: return now + settings.reconcileEvery
        case .reported:
            return record.blobsDeleted || record.blobsDeferred || !settings.deleteBlobsWhenReported ? max(now, record.updatedAt + settings.reportedRetention) : now + settings.repairAfter
        case .failed, .quarantined, .notRoutable:
            return max(now, record.updatedAt + settings.endedRetention)
        }
    }

    public func decide(_ record: StudyRecord, _ event: StudyEvent, now: Int64) -> StudyDecision {
        switch event {
        case .commit(let reason): return commit(record, reason: reason, now: now)
        case .fanOut: return fanOut(record, now: now)
        case .lateInstance(let sop): return lateInstance(record, sop: sop, now: now)
        case .instanceStarted(let generation):
            guard generation == record.generation, record.state == .queued else { return ignore(record, now, "study is \(record.state.rawValue), generation \(record.generation)") }
            return change(record, to: .processing, AuditNote("study.processing"), now: now)
        case .screened(let outcome, let generation): return screened(record, outcome, generation: generation, now: now)
        case .unreadable(let failures, let generation):
            guard generation == record.generation, [.queued, .processing].contains(record.state) else { return ignore(record, now, "not in the queue") }
            let codes = Array(Set(failures.map(\.code))).sorted().joined(separator: ",")
            return end(record, .quarantined, StudyFailure(StudyFailure.noReadableImages, "\(failures.count) instances could not be read (\(codes))"), now: now)
        case .nonDiagnostic(let count, let generation):
            guard generation == record.generation, [.queued, .processing].contains(record.state) else { return ignore(record, now, "not in the queue") }
            return end(record, .notRoutable, StudyFailure(StudyFailure.noDiagnosticImages, "no diagnostic image; \(count) non-image objects"), now: now)
        case .taskDead(let stage, let reason, let generation):
            guard generation == record.generation, [.queued, .processing].contains(record.state) else { return ignore(record, now, "not in the queue") }
            switch stage {
            case .instance: return ignore(record, now, "a dead instance task is reported by the study task")
            case .study: return end(record, .failed, StudyFailure(StudyFailure.studyTaskDead, "study task dead-lettered: \(reason)"), now: now)
            case .ai: return end(record, .failed, StudyFailure(StudyFailure.modelTaskDead, "ai task dead-lettered: \(reason)"), now: now)
            }
        case .handOff(let route): return handOff(record, route: route, now: now)
        case .caseEvent(let entry): return caseEvent(record, entry, now: now)
        case .sweep(let observation): return sweep(record, observation)
        case .requeue(let reason): return requeue(record, reason: reason, now: now)
        }
    }

    // MARK: Intake

    func commit(_ record: StudyRecord, reason: String, now: Int64) -> StudyDecision {
        guard record.state == .received, !record.committed else { return ignore(record, now, "already committed") }
        var next = record
        next.committed = true
        return StudyDecision(next: next, audit: AuditNote("study.committed", "instances=\(record.instances) reason=\(reason)"),
                             effects: [.announceCommit], settle: .at(now + settings.repairAfter))
    }

    func fanOut(_ record: StudyRecord, now: Int64) -> StudyDecision {
        switch record.state {
        case .received where record.committed:
            guard record.instances > 0 else {
                return end(record, .failed, StudyFailure(StudyFailure.noInstances, "committed without instances"), now: now)
            }
            var decision = change(record, to: .queued, AuditNote("study.queued", "instances=\(record.instances) priority=\(record.priority) generation=\(record.generation)"), now: now)
            decision.effects = [.enqueueTasks(generation: record.generation)]
            return decision
        case .queued:
            // A previous attempt may have stopped between the change and the enqueue.
            return StudyDecision(effects: [.enqueueTasks(generation: record.generation)], settle: .at(now + settings.liveCheckEvery))
        default:
            return ignore(record, now, record.state == .received ? "not committed" : "already fanned out")
        }
    }

    func lateInstance(_ record: StudyRecord, sop: SOPInstanceUID, now: Int64) -> StudyDecision {
        guard record.state != .received else { return ignore(record, now, "part of the study") }
        // Counted by the store; recorded here so the case shows it and the audit names it.
        return StudyDecision(next: record, audit: AuditNote("study.lateInstance", "sop=\(sop) state=\(record.state.rawValue) late=\(record.lateInstances)"),
                             settle: .at(idleCheck(record, now: now)))
    }

    // MARK: Workers

    func screened(_ record: StudyRecord, _ outcome: ScreeningOutcome, generation: Int, now: Int64) -> StudyDecision {
        guard generation == record.generation, [.queued, .processing].contains(record.state) else {
            return ignore(record, now, "study is \(record.state.rawValue), generation \(record.generation)")
        }
        var next = record
        next.state = .screened
        var screening = outcome
        if let wanted = outcome.urgency.minimumPriority, wanted < record.priority {
            screening.priorityRaisedFrom = record.priority
            next.priority = wanted
        }
        next.screening = screening
        var details = "urgency=\(outcome.urgency.rawValue) score=\(formatScore(outcome.score)) findings=\(outcome.findingCodes().joined(separator: ","))"
        details += " images=\(outcome.screenedImages)"
        if let models = outcome.models, !models.isEmpty {
            // Which model ran, and which said what: for QC and the regulator.
            details += " models=\(models.map(\.description).joined(separator: ","))"
            let said = outcome.findings.compactMap { f in f.model.map { "\(f.code):\($0.name)@\($0.version):\(formatScore(f.probability))" } }
            if !said.isEmpty { details += " modelFindings=\(Array(Set(said)).sorted().joined(separator: ","))" }
        }
        if outcome.nonImageInstances > 0 { details += " nonImage=\(outcome.nonImageInstances)" }
        if outcome.isPartial { details += " partial=\(outcome.failedInstances.count)" }
        if next.priority != record.priority { details += " priority=\(next.priority)" }
        let action = outcome.urgency == .critical ? "study.screened.critical" : "study.screened"
        return StudyDecision(next: next, audit: AuditNote(action, details), settle: .at(now + settings.repairAfter))
    }

    // MARK: Router

    func handOff(_ record: StudyRecord, route: RouteDecision, now: Int64) -> StudyDecision {
        switch record.state {
        case .screened:
            var next = record
            next.state = .routing
            let caseID = Self.caseID(for: record.uid, generation: record.generation)
            next.caseID = caseID
            next.route = route
            next.expert = nil
            next.lastCaseEvent = nil
            var details = "case=\(caseID) spec=\(route.specialty) priority=\(route.priority)"
            if !route.note.isEmpty { details += " note=\(route.note)" }
            return StudyDecision(next: next, audit: AuditNote("study.routing", details), effects: [.submitCase(caseID, route)],
                                 settle: .at(now + settings.liveCheckEvery))
        case .routing:
            guard let caseID = record.caseID, let route = record.route else { return ignore(record, now, "routing without a case") }
            return StudyDecision(effects: [.submitCase(caseID, route)], settle: .at(now + settings.liveCheckEvery))
        default:
            return ignore(record, now, "study is \(record.state.rawValue)")
        }
    }

    func caseEvent(_ record: StudyRecord, _ entry: CaseEventEntry, now: Int64) -> StudyDecision {
        guard record.caseID == entry.caseID else { return ignore(record, now, "event of another case") }
        guard [.routing, .assigned, .accepted].contains(record.state) else { return ignore(record, now, "study is \(record.state.rawValue)") }
        if let last = record.lastCaseEvent, entry.id <= last { return ignore(record, now, "stale or replayed event") }
        var next = record
        next.lastCaseEvent = entry.id
        let caseText = "case=\(entry.caseID)"
        switch entry.event {
        case .offered(let expert):
            if record.state == .assigned && record.expert == expert { return bookkeeping(next, now: now) }
            next.state = .assigned
            next.expert = expert
            var decision = settled(next, AuditNote("study.assigned", "\(caseText) expert=\(expert)"), now: now)
            if record.state == .routing { decision.effects = [.recordAssignment(receivedAt: record.createdAt)] }
            return decision
        case .accepted(let expert):
            if record.state == .accepted && record.expert == expert { return bookkeeping(next, now: now) }
            next.state = .accepted
            next.expert = expert
            return settled(next, AuditNote("study.accepted", "\(caseText) expert=\(expert)"), now: now)
        case .declined(let expert, let reason), .released(let expert, let reason):
            guard record.expert == expert, record.state != .routing else { return bookkeeping(next, now: now) }
            next.state = .routing
            next.expert = nil
            let kind = if case .declined = entry.event { "decline" } else { "release" }
            return settled(next, AuditNote("study.routing", "\(caseText) event=\(kind) expert=\(expert) reason=\(reason)"), now: now)
        case .acceptTimedOut(let expert):
            guard record.expert == expert, record.state == .assigned else { return bookkeeping(next, now: now) }
            next.state = .routing
            next.expert = nil
            return settled(next, AuditNote("study.routing", "\(caseText) event=accept_timeout expert=\(expert)"), now: now)
        case .completed(let expert, let report):
            next.state = .reported
            next.expert = expert
            return StudyDecision(next: next, audit: AuditNote("study.reported", "\(caseText) expert=\(expert) report=\(report)"),
                                 effects: retentionEffects, settle: .at(now + settings.reportedRetention))
        case .cancelled(let reason):
            return end(next, .failed, StudyFailure(StudyFailure.caseCancelled, "case cancelled: \(reason)"), now: now)
        case .submitted, .waiting, .widened, .aged, .escalated, .other:
            return bookkeeping(next, now: now)
        }
    }

    // MARK: Sweeper

    func sweep(_ record: StudyRecord, _ seen: SweepObservation) -> StudyDecision {
        let now = seen.now
        switch record.state {
        case .received:
            if record.committed { return fanOut(record, now: now) }
            guard now >= record.lastInstanceAt + settings.stableAge, !seen.siteUploading else {
                return StudyDecision(settle: .at(seen.siteUploading ? now + 1000 : record.lastInstanceAt + settings.stableAge), ignored: "still receiving")
            }
            return commit(record, reason: "stable-age", now: now)
        case .queued, .processing:
            guard let queue = seen.queue else { return StudyDecision(settle: .at(now + settings.repairAfter), ignored: "queue not observed") }
            if queue.studyTask == .dead {
                return end(record, .failed, StudyFailure(StudyFailure.studyTaskDead, "study task dead-lettered"), now: now)
            }
            if queue.modelTask == .dead {
                return end(record, .failed, StudyFailure(StudyFailure.modelTaskDead, "ai task dead-lettered"), now: now)
            }
            if queue.isAlive { return StudyDecision(settle: .at(now + settings.liveCheckEvery), ignored: "tasks alive") }
            // Nothing of this run is left in the queue, yet the study did not move on: the
            // tasks were lost (e.g. Redis lost writes). Run them again under a new generation.
            guard record.recoveries < settings.maxRecoveries else {
                return end(record, .failed, StudyFailure(StudyFailure.tasksLost, "tasks lost \(record.recoveries + 1) times"), now: now)
            }
            var next = record
            next.state = .queued
            next.generation += 1
            next.recoveries += 1
            return StudyDecision(next: next, audit: AuditNote("study.recovered", "tasks lost; generation=\(next.generation) recovery=\(next.recoveries)"),
                                 effects: [.enqueueTasks(generation: next.generation)], settle: .at(now + settings.liveCheckEvery))
        case .screened:
            // The hand-off was lost (or its process died): hand it off again.
            guard let route = seen.route else { return StudyDecision(settle: .at(now + settings.repairAfter), ignored: "route not derived") }
            return handOff(record, route: route, now: now)
        case .routing, .assigned, .accepted:
            guard let seenCase = seen.router, let caseID = record.caseID, let route = record.route else {
                return StudyDecision(settle: .at(now + settings.repairAfter), ignored: "case not observed")
            }
            return reconcile(record, seenCase, caseID: caseID, route: route, now: now)
        case .reported:
            if !record.blobsDeleted && !record.blobsDeferred && settings.deleteBlobsWhenReported { return StudyDecision(effects: [.deleteBlobs], settle: .at(now + settings.reportedRetention)) }
            if now >= record.updatedAt + settings.reportedRetention { return StudyDecision(effects: [.expire], settle: .remove) }
            return StudyDecision(settle: .at(record.updatedAt + settings.reportedRetention), ignored: "retained")
        case .failed, .quarantined, .notRoutable:
            if now >= record.updatedAt + settings.endedRetention { return StudyDecision(effects: [.expire], settle: .remove) }
            return StudyDecision(settle: .at(record.updatedAt + settings.endedRetention), ignored: "retained")
        }
    }

    /// Brings the study in line with the router's case, when the case is at least as new as
    /// the newest event the study applied (events lost or trimmed are recovered this way).
    func reconcile(_ record: StudyRecord, _ seen: CaseObservation, caseID: CaseID, route: RouteDecision, now: Int64) -> StudyDecision {
        let idle = idleCheck(record, now: now)
        if seen.state == .missing {
            // The router does not know the case (never submitted, or lost): submit it again.
            guard record.state != .routing else {
                return StudyDecision(effects: [.submitCase(caseID, route)], settle: .at(now + settings.liveCheckEvery))
            }
            var next = record
            next.state = .routing
            next.expert = nil
            return StudyDecision(next: next, audit: AuditNote("study.routing", "case=\(caseID) event=case_missing"),
                                 effects: [.submitCase(caseID, route)], settle: .at(now + settings.liveCheckEvery))
        }
        if let last = record.lastCaseEvent, seen.asOf < last { return StudyDecision(settle: .at(idle), ignored: "case snapshot older than applied events") }
        var next = record
        next.lastCaseEvent = max(record.lastCaseEvent ?? .zero, seen.asOf)
        let note: AuditNote
        switch seen.state {
        case .missing: return StudyDecision(settle: .at(idle))  // handled above
        case .waiting:
            guard record.state != .routing else { return StudyDecision(settle: .at(idle), ignored: "in line with the router") }
            next.state = .routing
            next.expert = nil
            note = AuditNote("study.routing", "case=\(caseID) reconciled=waiting")
        case .offered, .accepted:
            let target: StudyState = seen.state == .offered ? .assigned : .accepted
            guard let expert = seen.expert else { return StudyDecision(settle: .at(idle), ignored: "case names no expert") }
            guard record.state != target || record.expert != expert else { return StudyDecision(settle: .at(idle), ignored: "in line with the router") }
            next.state = target
            next.expert = expert
            note = AuditNote("study.\(target.rawValue)", "case=\(caseID) expert=\(expert) reconciled=\(seen.state.rawValue)")
        case .completed:
            next.state = .reported
            next.expert = seen.expert ?? record.expert
            return StudyDecision(next: next, audit: AuditNote("study.reported", "case=\(caseID) reconciled=completed"),
                                 effects: retentionEffects, settle: .at(now + settings.reportedRetention))
        case .cancelled:
            return end(next, .failed, StudyFailure(StudyFailure.caseCancelled, "case cancelled"), now: now)
        }
        return settled(next, note, now: now)
    }

    // MARK: Operators

    func requeue(_ record: StudyRecord, reason: String, now: Int64) -> StudyDecision {
        guard [.failed, .quarantined, .notRoutable].contains(record.state) else {
            return ignore(record, now, "only failed, quarantined or not-routable studies are requeued (study is \(record.state.rawValue))")
        }
        guard !record.blobsDeleted else { return ignore(record, now, "its instances were deleted") }
        var next = record
        next.state = .queued
        next.generation += 1
        next.recoveries = 0
        next.failure = nil
        next.screening = nil
        next.caseID = nil
        next.expert = nil
        next.route = nil
        next.lastCaseEvent = nil
        return StudyDecision(next: next, audit: AuditNote("study.requeued", "from=\(record.state.rawValue) generation=\(next.generation) reason=\(reason)"),
                             effects: [.enqueueTasks(generation: next.generation)], settle: .at(now + settings.liveCheckEvery))
    }

    // MARK: Building decisions

    var retentionEffects: [StudyEffect] { settings.deleteBlobsWhenReported ? [.deleteBlobs] : [] }

    func change(_ record: StudyRecord, to state: StudyState, _ note: AuditNote, now: Int64) -> StudyDecision {
        var next = record
        next.state = state
        return StudyDecision(next: next, audit: note, settle: .at(idleCheck(next, now: now)))
    }

    /// A change with no follow-up work: the sweeper's next look is the idle one.
    func settled(_ next: StudyRecord, _ note: AuditNote, now: Int64) -> StudyDecision {
        StudyDecision(next: next, audit: note, settle: .at(idleCheck(next, now: now)))
    }

    /// Remembers the newest router event without an audit entry (nothing changed for the study).
    func bookkeeping(_ next: StudyRecord, now: Int64) -> StudyDecision {
        StudyDecision(next: next, audit: nil, settle: .at(idleCheck(next, now: now)))
    }

    func end(_ record: StudyRecord, _ state: StudyState, _ failure: StudyFailure, now: Int64) -> StudyDecision {
        var next = record
        next.state = state
        next.failure = failure
        next.expert = nil
        return StudyDecision(next: next, audit: AuditNote("study.\(state.rawValue)", "reason=\(failure.code) \(failure.detail)"),
                             settle: .at(now + settings.endedRetention))
    }

    func ignore(_ record: StudyRecord, _ now: Int64, _ why: String) -> StudyDecision {
        StudyDecision(settle: .keep, ignored: why)
    }

    func formatScore(_ score: Double) -> String {
        let scaled = Int((score * 1000).rounded())
        let whole = scaled / 1000, fraction = scaled % 1000
        return "\(whole)." + String(repeating: "0", count: 3 - String(fraction).count) + String(fraction)
    }
}
