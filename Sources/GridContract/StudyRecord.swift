/// A study as the grid records it: what the state machine decides on and what status
/// screens show. No patient data: identifiers, codes, counts and times only.
public struct StudyRecord: Sendable, Hashable {
    public var uid: StudyUID
    public var site: SiteID
    public var state: StudyState
    /// Bumped by every change; a change applies only if the record still has the version it
    /// was decided on (optimistic concurrency across coordinators and workers).
    public var version: Int
    public var priority: Priority
    public var modality: String
    public var bodyPart: String
    public var instances: Int
    public var rawBytes: Int64
    public var storedBytes: Int64
    public var lateInstances: Int
    /// Complete: no more instances expected (explicit commit, association release, stable age).
    public var committed: Bool
    /// Bumped by a requeue; names the current run's tasks.
    public var generation: Int
    /// Times the sweeper re-enqueued lost tasks in this generation.
    public var recoveries: Int
    public var createdAt: Int64
    /// When the study entered its current state (ms).
    public var updatedAt: Int64
    public var lastInstanceAt: Int64
    public var caseID: CaseID?
    public var expert: ExpertID?
    /// The newest router event applied (older or replayed events change nothing).
    public var lastCaseEvent: StreamEntryID?
    public var route: RouteDecision?
    public var screening: ScreeningOutcome?
    public var failure: StudyFailure?
    public var blobsDeleted: Bool
    /// QC holds the instances past the report; their deletion waits for it.
    public var blobsDeferred: Bool = false
    /// The sending site's consent reference, when it gave one (header `X-Consent-Reference`).
    public var consentReference: String?
    /// The StudyInstanceUID the site sent, when the study is kept under another key (a site's
    /// copy of a UID another site holds; see `StudyStore.siteCopyUID`).
    public var dicomStudyUID: StudyUID?
    /// The study's UID as its site and its DICOM instances know it.
    public var studyInstanceUID: StudyUID { dicomStudyUID ?? uid }

    public init(uid: StudyUID, site: SiteID, state: StudyState = .received, version: Int = 1, priority: Priority = .routine,
                modality: String = "", bodyPart: String = "", instances: Int = 0, rawBytes: Int64 = 0, storedBytes: Int64 = 0,
                lateInstances: Int = 0, committed: Bool = false, generation: Int = 0, recoveries: Int = 0,
                createdAt: Int64 = 0, updatedAt: Int64 = 0, lastInstanceAt: Int64 = 0, caseID: CaseID? = nil, expert: ExpertID? = nil,
                lastCaseEvent: StreamEntryID? = nil, route: RouteDecision? = nil, screening: ScreeningOutcome? = nil,
                failure: StudyFailure? = nil, blobsDeleted: Bool = false) {
        self.uid = uid
        self.site = site
        self.state = state
        self.version = version
        self.priority = priority
        self.modality = modality
        self.bodyPart = bodyPart
        self.instances = instances
        self.rawBytes = rawBytes
        self.storedBytes = storedBytes
        self.lateInstances = lateInstances
        self.committed = committed
        self.generation = generation
        self.recoveries = recoveries
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastInstanceAt = lastInstanceAt
        self.caseID = caseID
        self.expert = expert
        self.lastCaseEvent = lastCaseEvent
        self.route = route
        self.screening = screening
        self.failure = failure
        self.blobsDeleted = blobsDeleted
    }
}

/// Where a case is routed: decided once at hand-off and kept on the study.
public struct RouteDecision: Sendable, Hashable, Codable {
    /// `CT/head/neuro`
    public var specialty: String
    public var priority: Priority
    public var weight: Int
    public var region: String?
    /// Why this specialty (the header field and term that matched, or the generalist fallback).
    public var note: String

    public init(specialty: String, priority: Priority, weight: Int, region: String? = nil, note: String = "") {
        self.specialty = specialty
        self.priority = priority
        self.weight = weight
        self.region = region
        self.note = note
    }
}
