/// Where a study is in its life. The transitions between states are decided by
/// `StudyStateMachine` (module `StudyLifecycle`) and applied atomically by the study store.
public enum StudyState: String, Sendable, Codable, CaseIterable {
    /// Instances are arriving; not yet complete (committed) or committed and waiting for fan-out.
    case received
    /// One task per instance is in the queue.
    case queued
    /// Workers have started on the instances.
    case processing
    /// Pre-screened; waiting to be handed to the router.
    case screened
    /// A case exists; the router is looking for an expert.
    case routing
    /// Offered to an expert who has not accepted yet.
    case assigned
    /// An expert is reading it.
    case accepted
    /// The report is signed. End state.
    case reported
    /// Given up with a reason (attempts exhausted, tasks lost, case cancelled); may be requeued.
    case failed
    /// No instance could be read; may be requeued after a fix.
    case quarantined
    /// Nothing an expert could read (only SR, KO, RT plans, ...). End state, with its reason.
    case notRoutable = "not-routable"

    /// No further work happens on its own; an operator may requeue failed and quarantined ones.
    public var isTerminal: Bool { [.reported, .failed, .quarantined, .notRoutable].contains(self) }
}

/// Why a study stopped: a stable code (for scripts, dashboards and the audit trail) and a
/// detail for people. Never patient data.
public struct StudyFailure: Sendable, Hashable, Codable {
    public var code: String
    public var detail: String

    public init(_ code: String, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    /// Committed with no instance.
    public static let noInstances = "study.noInstances"
    /// Every instance failed to decode.
    public static let noReadableImages = "study.noReadableImages"
    /// Only non-image objects (SR, KO, RT plans, ...): nothing for an expert to read.
    public static let noDiagnosticImages = "study.noDiagnosticImages"
    /// The study task was dead-lettered (its worker kept dying, or its attempts ran out).
    public static let studyTaskDead = "study.taskDeadLettered"
    /// The `ai` stage's task kept failing (a model that cannot run): requeue once it is fixed.
    public static let modelTaskDead = "study.modelTaskDeadLettered"
    /// The queue no longer knows the study's tasks (data lost) and re-enqueueing did not help.
    public static let tasksLost = "study.tasksLost"
    /// The router cancelled the case.
    public static let caseCancelled = "study.caseCancelled"
    /// The study sat in one state past every deadline the sweeper allows.
    public static let stalled = "study.stalled"
}
