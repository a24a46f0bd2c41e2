import GridContract

/// Timings of the study lifecycle (milliseconds).
public struct LifecycleSettings: Sendable, Hashable {
    /// A study with no new instance (and no upload in progress from its site) for this long is committed.
    public var stableAge: Int64 = 10_000
    /// After a change, the sweeper looks again this soon unless the process that made the
    /// change finishes its follow-up (enqueue, hand-off, ...). A crash in between costs this much.
    public var repairAfter: Int64 = 10_000
    /// How often a study in the queue or waiting for an expert is checked for liveness.
    public var liveCheckEvery: Int64 = 30_000
    /// How often an assigned or accepted study is reconciled with the router's case.
    public var reconcileEvery: Int64 = 300_000
    /// Times lost tasks are re-enqueued before the study fails with `study.tasksLost`.
    public var maxRecoveries = 2
    /// Delete a study's compressed instances once it is reported.
    public var deleteBlobsWhenReported = true
    /// How long a reported study's record is kept (its audit chain is kept apart).
    public var reportedRetention: Int64 = 30 * 86_400_000
    /// How long a failed, quarantined or not-routable study is kept for a requeue.
    public var endedRetention: Int64 = 7 * 86_400_000

    public init() {}
}

/// What the queue knows about a study's current generation, gathered by the sweeper.
public struct QueueObservation: Sendable, Hashable {
    public enum Task: Sendable, Hashable {
        /// Waiting in a lane, held by a worker or waiting for a retry.
        case live
        case completed
        /// Dead-lettered.
        case dead
        /// The queue does not know it (never enqueued, or the record was lost).
        case unknown
    }

    public var studyTask: Task
    /// The fan-in group still counts members down.
    public var groupOpen: Bool
    /// Instance tasks the queue holds live.
    public var liveInstances: Int
    /// The `ai` stage's task (`unknown` when no model screens the study).
    public var modelTask: Task

    public init(studyTask: Task, groupOpen: Bool, liveInstances: Int, modelTask: Task = .unknown) {
        self.studyTask = studyTask
        self.groupOpen = groupOpen
        self.liveInstances = liveInstances
        self.modelTask = modelTask
    }

    /// Work for the study is still under way somewhere.
    public var isAlive: Bool { studyTask == .live || groupOpen || liveInstances > 0 || modelTask == .live }
}

/// The router's case as the sweeper read it.
public struct CaseObservation: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        case missing, waiting, offered, accepted, completed, cancelled
    }

    public var state: State
    public var expert: ExpertID?
    /// The router's event stream position read just before the case: every event up to it
    /// is reflected in `state`.
    public var asOf: StreamEntryID

    public init(state: State, expert: ExpertID? = nil, asOf: StreamEntryID) {
        self.state = state
        self.expert = expert
        self.asOf = asOf
    }
}

/// Everything the sweeper saw about one due study.
public struct SweepObservation: Sendable, Hashable {
    public var now: Int64
    /// The study's site has an upload in progress (its next instances may still come).
    public var siteUploading: Bool
    public var queue: QueueObservation?
    public var router: CaseObservation?
    /// For a screened study: where the coordinator would route it.
    public var route: RouteDecision?

    public init(now: Int64, siteUploading: Bool = false, queue: QueueObservation? = nil, router: CaseObservation? = nil, route: RouteDecision? = nil) {
        self.now = now
        self.siteUploading = siteUploading
        self.queue = queue
        self.router = router
        self.route = route
    }
}

/// Which kind of task a dead letter was.
public enum TaskStage: String, Sendable, Hashable, Codable {
    case instance, study, ai
}

/// Something that happened to a study, from any process.
public enum StudyEvent: Sendable, Hashable {
    /// Complete: explicit (gateway, CLI, association release) or by stable age.
    case commit(reason: String)
    /// The coordinator takes a committed study: one task per instance.
    case fanOut
    /// An instance arrived after the commit.
    case lateInstance(SOPInstanceUID)
    /// A worker started on one of the study's instances.
    case instanceStarted(generation: Int)
    /// The study task's verdict.
    case screened(ScreeningOutcome, generation: Int)
    /// The study task found no instance it could read.
    case unreadable([FailedInstance], generation: Int)
    /// The study task found only non-image objects.
    case nonDiagnostic(nonImageInstances: Int, generation: Int)
    /// The queue dead-lettered one of the study's tasks.
    case taskDead(TaskStage, reason: String, generation: Int)
    /// The coordinator hands the screened study to the router, to this pool.
    case handOff(RouteDecision)
    /// The router reports a step of the study's case.
    case caseEvent(CaseEventEntry)
    /// The study is due: what the sweeper observed.
    case sweep(SweepObservation)
    /// An operator sends a failed or quarantined study through the pipeline again.
    case requeue(reason: String)
}

/// Work to do after a change is stored. Every effect is idempotent: repeating one (after a
/// crash, by a second coordinator or by the sweeper) does no harm.
public enum StudyEffect: Sendable, Hashable {
    /// Tell the coordinators the study is complete (`studies:committed`).
    case announceCommit
    /// Enqueue one task per instance of this generation, and the study task as the group's next.
    case enqueueTasks(generation: Int)
    /// Register the case with the router (a duplicate submit is a no-op).
    case submitCase(CaseID, RouteDecision)
    /// Retention: drop the compressed instances (the record and audit stay).
    case deleteBlobs
    /// Retention: drop the record, its instance index and its index entries.
    case expire
    /// Measure received → assigned.
    case recordAssignment(receivedAt: Int64)
}

/// The audit entry a change writes in the same script.
public struct AuditNote: Sendable, Hashable {
    public var action: String
    public var details: String
    public init(_ action: String, _ details: String = "") {
        self.action = action
        self.details = details
    }
}

/// When the sweeper looks at a study next.
public enum NextCheck: Sendable, Hashable {
    /// Leave the study's due time as it is (nothing happened).
    case keep
    /// At this time (ms since the epoch).
    case at(Int64)
    /// Never: the record is gone.
    case remove
}

/// The machine's answer to one event.
public struct StudyDecision: Sendable, Hashable {
    /// The record as it must become (nil: no change). Applied only if the stored record
    /// still has the version this decision was made on.
    public var next: StudyRecord?
    /// Written with the change, in the same script (nil: the change is bookkeeping only).
    public var audit: AuditNote?
    public var effects: [StudyEffect]
    /// When the sweeper looks next once the change is stored and the effects ran. Until then
    /// (from just before the change is stored) the study is due `repairAfter` from now.
    public var settle: NextCheck
    /// Why nothing happened, for logs and tests.
    public var ignored: String?

    public init(next: StudyRecord? = nil, audit: AuditNote? = nil, effects: [StudyEffect] = [], settle: NextCheck, ignored: String? = nil) {
        self.next = next
        self.audit = audit
        self.effects = effects
        self.settle = settle
        self.ignored = ignored
    }

    /// A change or an effect follows: the caller arms the repair check first.
    public var needsRepairWindow: Bool { next != nil || !effects.isEmpty }
}
