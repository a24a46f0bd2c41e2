import Audit
import CriticalResults
import GridContract
import Logging
import Metrics
import RadGridCore
import RedisClient
import Routing
import ServiceLifecycle
import StudyLifecycle
import StudyStore
import TaskQueue

/// The coordinator: feeds the study state machine the events of four streams and the
/// sweeper's due studies, and carries out its decisions. It holds no state of its own; any
/// number of coordinators may run (consumer group `coordinators` on each stream, due studies
/// claimed with a lease), and every step is idempotent.
///
/// | stream | entry | event |
/// | --- | --- | --- |
/// | `studies:committed` | `study` (+ `late` sop) | `.fanOut` / `.lateInstance` |
/// | `{q:tasks}:screened` | `study` | `.handOff(route)` |
/// | `route:{rt}:audit` | a router step | `.caseEvent` |
/// | `{q:tasks}:dead`, `{q:ai}:dead` | a dead-lettered task | `.taskDead` |
/// | sweeper (`studies:due`) | a study due | `.sweep(observation)` |
public final class Coordinator: Service, Sendable {
    public static let consumerGroup = "coordinators"

    public let client: RedisClient
    public let settings: CoordinatorSettings
    public let store: StudyStore
    /// The grid's task queue, in `settings.queueShards` shards (a study's tasks in one).
    public let queues: ShardedTaskQueue
    /// The `ai` stage's queue: its dead letters and the sweeper's view of a model task.
    public let modelQueues: ShardedTaskQueue
    public let router: ExpertRouter
    public let machine: StudyStateMachine
    public let planner: RoutePlanner
    let keys: GridKeys
    let logger: Logger
    let actor: AuditActor
    let effects: StudyWork
    let turnaround: Turnaround
    let metricEvents = Counter(label: "radgrid_coordinator_events_total")
    let metricSweeps = Counter(label: "radgrid_coordinator_sweeps_total")

    public init(client: RedisClient, settings: CoordinatorSettings, logger: Logger = Logger(label: "radgrid.coordinator")) {
        self.client = client
        self.settings = settings
        self.logger = logger
        keys = GridKeys(prefix: settings.prefix)
        store = StudyStore(client: client, prefix: settings.prefix, logger: logger)
        queues = ShardedTaskQueue(client: client, name: GridKeys.taskQueue, shardCount: settings.queueShards,
                                  configuration: TaskQueueConfiguration(prefix: settings.prefix), logger: logger)
        modelQueues = ShardedTaskQueue(client: client, name: GridKeys.modelQueue, shardCount: settings.queueShards,
                                       configuration: TaskQueueConfiguration(prefix: settings.prefix), logger: logger)
        router = ExpertRouter(redis: client, prefix: settings.prefix, config: settings.routing, actor: settings.consumerName, logger: logger)
        machine = StudyStateMachine(settings: settings.lifecycle)
        planner = RoutePlanner(client: client, keys: keys, config: settings.routing)
        actor = AuditActor(.coordinator, settings.consumerName)
        turnaround = Turnaround(client: client, prefix: settings.prefix)
        effects = StudyWork(store: store, queues: queues, router: router, logger: logger,
                            critical: CriticalResultStore(client: client, prefix: settings.prefix, actor: actor))
    }

    public func run() async throws {
        var consumers = [
            consumer(keys.committedStream) { [self] entry in try await committed(entry) },
            consumer(keys.routerEvents) { [self] entry in try await routerEvent(entry) },
        ]
        // Each shard has its hand-off and dead-letter streams, in its own slot.
        for shard in queues.shards {
            consumers.append(consumer(keys.screenedStream(queue: shard.name)) { [self] entry in try await screened(entry) })
            consumers.append(consumer(keys.deadLetterStream(queue: shard.name)) { [self] entry in try await deadLetter(entry) })
        }
        for shard in modelQueues.shards {
            consumers.append(consumer(keys.deadLetterStream(queue: shard.name)) { [self] entry in try await deadLetter(entry) })
        }
        for consumer in consumers { try await consumer.ensureGroup() }
        logger.info("coordinator started", metadata: ["consumer": "\(settings.consumerName)", "stableAgeMs": "\(settings.lifecycle.stableAge)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for consumer in consumers { group.addTask { try await consumer.run() } }
            group.addTask { await cancelWhenGracefulShutdown { await self.sweepLoop() } }
            try await group.waitForAll()
        }
        logger.info("coordinator stopped")
    }

    func consumer(_ stream: String, handler: @escaping @Sendable (StreamEntry) async throws -> Void) -> StreamConsumer {
        var configuration = StreamConsumer.Configuration(stream: stream, group: Self.consumerGroup, consumer: settings.consumerName)
        configuration.claimIdle = settings.claimIdle
        configuration.block = .milliseconds(500)
        return StreamConsumer(client: client, configuration: configuration, logger: logger, handler: handler)
    }

    /// Feeds one event; a study that no longer exists is logged and done.
    @discardableResult
    public func handle(_ event: StudyEvent, study uid: StudyUID) async throws -> StudyHandling {
        metricEvents.increment()
        let outcome = try await store.handle(event, study: uid, actor: actor, machine: machine, effects: effects)
        if case .handled(let decision, let record) = outcome, let next = decision.next, next.state != .received || decision.audit != nil {
            logger.debug("study event", metadata: ["study": "\(uid)", "state": "\(record.state.rawValue)"])
        }
        return outcome
    }

    // MARK: Streams

    func committed(_ entry: StreamEntry) async throws {
        let fields = entry.text
        guard let text = fields["study"], let uid = try? StudyUID(text) else { return }
        if let late = fields["late"], let sop = try? SOPInstanceUID(late) {
            try await handle(.lateInstance(sop), study: uid)
        } else {
            try await handle(.fanOut, study: uid)
        }
    }

    func screened(_ entry: StreamEntry) async throws {
        guard let text = entry.text["study"], let uid = try? StudyUID(text) else { return }
        guard let record = try await store.record(uid), record.state == .screened || record.state == .routing else { return }
        try await handle(.handOff(try await planner.route(for: record)), study: uid)
    }

    func routerEvent(_ entry: StreamEntry) async throws {
        let parsed: CaseEventEntry?
        do {
            parsed = try CaseEventEntry.parse(id: entry.id, fields: entry.text)
        } catch {
            logger.warning("router event not understood; skipped", metadata: ["entry": "\(entry.id)", "error": "\(error)"])
            return
        }
        guard let event = parsed, Self.mirrored(event.event) else { return }
        // Cases created outside the grid (tests, benchmarks, the CLI) map to no study.
        guard let uid = try await store.study(forCase: event.caseID) else { return }
        let outcome = try await handle(.caseEvent(event), study: uid)
        // Turnaround is counted once, on the transition to reported.
        if case .completed = event.event, case .handled(let decision, let record) = outcome, decision.next?.state == .reported,
           let info = try await router.caseInfo(event.caseID.rawValue) {
            try await turnaround.record(priority: record.priority, receivedAt: record.createdAt, info: info)
        }
    }

    /// Router steps that can change a study; the rest (waits, widening) only cost a read.
    static func mirrored(_ event: CaseEvent) -> Bool {
        switch event {
        case .offered, .accepted, .declined, .released, .acceptTimedOut, .completed, .cancelled: true
        default: false
        }
    }

    func deadLetter(_ entry: StreamEntry) async throws {
        let fields = entry.fields
        guard let payload = fields["payload"]?.bytes, let task = try? GridTask.decode(payload) else { return }
        let reason = fields["reason"]?.string ?? "dead"
        switch task {
        case .study(let study):
            try await handle(.taskDead(.study, reason: reason, generation: study.generation), study: study.study)
        case .instance(let instance):
            try await handle(.taskDead(.instance, reason: reason, generation: instance.generation), study: instance.study)
        case .model(let model):
            try await handle(.taskDead(.ai, reason: reason, generation: model.generation), study: model.study)
        }
    }

    // MARK: Sweeper

    /// Leader-free: every coordinator claims due studies (each for `sweepLease`) and feeds
    /// them `.sweep` with what it observed, which re-derives whatever follow-up a crash lost.
    func sweepLoop() async {
        while !Task.isCancelled {
            do {
                let due = try await store.claimDue(limit: 100, lease: settings.sweepLease)
                for uid in due where !Task.isCancelled {
                    do {
                        try await sweep(uid)
                    } catch {
                        logger.warning("sweep failed; the study comes due again", metadata: ["study": "\(uid)", "error": "\(error)"])
                    }
                }
                if due.count < 100 {
                    let now = WallClock.nowMilliseconds()
                    let next = try await store.nextDue() ?? now + 1000
                    try? await Task.sleep(for: .milliseconds(min(1000, max(20, next - now))))
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("sweeper failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Looks at one due study: observes what its state depends on, then decides.
    public func sweep(_ uid: StudyUID) async throws {
        metricSweeps.increment()
        guard let record = try await store.record(uid) else {
            try await store.forgetDue(uid)
            return
        }
        try await store.repairIndex(record)
        var seen = SweepObservation(now: WallClock.nowMilliseconds())
        switch record.state {
        case .received:
            seen.siteUploading = try await store.isUploading(site: record.site)
        case .queued, .processing:
            seen.queue = try await observeQueue(record)
        case .screened:
            seen.route = try await planner.route(for: record)
        case .routing, .assigned, .accepted:
            seen.router = try await observeCase(record)
        case .reported, .failed, .quarantined, .notRoutable:
            break
        }
        seen.now = WallClock.nowMilliseconds()
        try await handle(.sweep(seen), study: uid)
    }

    func observeQueue(_ record: StudyRecord) async throws -> QueueObservation {
        let sops = try await store.instanceUIDs(record.uid)
        let studyKey = GridTask.studyKey(study: record.uid, generation: record.generation)
        let taskKeys = [studyKey] + sops.map { GridTask.instanceKey(study: record.uid, generation: record.generation, sop: $0) }
        let queue = queues.shard(forRoutingKey: record.uid.rawValue)
        let presence = try await queue.presence(ofKeys: taskKeys)
        let study: QueueObservation.Task = switch presence.first {
        case .live?: .live
        case .completed?: .completed
        default: .unknown
        }
        let groupOpen = try await client.send("HEXISTS", RedisArgument(queue.keys.groups),
                                              RedisArgument(GridTask.groupID(study: record.uid, generation: record.generation))).int == 1
        // The ai stage's task, once the study task has handed over to it.
        let model: QueueObservation.Task = study == .completed
            ? (try await modelQueues.shard(forRoutingKey: record.uid.rawValue).presence(ofKeys: [GridTask.modelKey(study: record.uid, generation: record.generation)]).first == .live ? .live : .unknown)
            : .unknown
        return QueueObservation(studyTask: study, groupOpen: groupOpen, liveInstances: presence.dropFirst().filter { $0 == .live }.count,
                                modelTask: model)
    }

    func observeCase(_ record: StudyRecord) async throws -> CaseObservation? {
        guard let caseID = record.caseID else { return nil }
        // The stream position first: every event up to it is reflected in the case read after.
        let last = try await client.send("XREVRANGE", RedisArgument(keys.routerEvents), "+", "-", "COUNT", "1")
        let asOf = last.array?.first?.array?.first?.string.flatMap(StreamEntryID.init) ?? .zero
        guard let info = try await router.caseInfo(caseID.rawValue) else { return CaseObservation(state: .missing, asOf: asOf) }
        let state: CaseObservation.State = switch info.state {
        case "offered": .offered
        case "accepted": .accepted
        case "completed": .completed
        case "cancelled": .cancelled
        default: .waiting
        }
        return CaseObservation(state: state, expert: info.expert.flatMap { try? ExpertID($0) }, asOf: asOf)
    }
}

/// The effects beyond the store: enqueueing a study's tasks and submitting its case. Both are
/// idempotent (task keys, case ids). The coordinator performs them, and so does `radgridctl
/// study requeue`.
public struct StudyWork: StudyEffectPerformer {
    let store: StudyStore
    let queues: ShardedTaskQueue
    let router: ExpertRouter
    let logger: Logger
    /// Critical results: an AI critical finding on a STAT case notifies the sending site.
    let critical: CriticalResultStore?

    public init(store: StudyStore, queues: ShardedTaskQueue, router: ExpertRouter, logger: Logger = Logger(label: "radgrid.coordinator"),
                critical: CriticalResultStore? = nil) {
        self.store = store
        self.queues = queues
        self.router = router
        self.logger = logger
        self.critical = critical
    }

    /// The grid's task queue and router on `client`, under `prefix`.
    public init(client: RedisClient, prefix: KeyPrefix, queueShards: Int = 1, routing: RoutingConfig = .standard, actor: String = "radgridctl") {
        self.init(store: StudyStore(client: client, prefix: prefix),
                  queues: ShardedTaskQueue(client: client, name: GridKeys.taskQueue, shardCount: queueShards, configuration: TaskQueueConfiguration(prefix: prefix)),
                  router: ExpertRouter(redis: client, prefix: prefix, config: routing, actor: actor),
                  critical: CriticalResultStore(client: client, prefix: prefix))
    }

    public func perform(_ effect: StudyEffect, for record: StudyRecord) async throws {
        switch effect {
        case .enqueueTasks(let generation):
            try await enqueue(record, generation: generation)
        case .submitCase(let caseID, let route):
            let request = CaseRequest(id: caseID.rawValue, specialty: try Specialty(route.specialty), site: record.site.rawValue,
                                      region: route.region, priority: route.priority, weight: route.weight)
            let outcome = try await router.submitCase(request)
            logger.info("case submitted", metadata: ["study": "\(record.uid)", "case": "\(caseID)", "outcome": "\(outcome)", "priority": "\(route.priority)"])
            // Critical results: the pre-screen found something critical on a STAT case (idempotent per study).
            if record.screening?.urgency == .critical, route.priority == .stat, let critical {
                try await critical.raise(study: record.uid, caseID: caseID, site: record.site, source: .ai, priority: route.priority,
                                         now: WallClock.nowMilliseconds())
            }
        default:
            throw StudyStoreError(.notApplicable, "the store performs \(effect)")
        }
    }

    /// One task per instance in the lane of the study's priority, and the study task as the
    /// fan-in group's next: enqueued once, by the completion of the last instance.
    func enqueue(_ record: StudyRecord, generation: Int) async throws {
        let sops = try await store.instanceUIDs(record.uid)
        guard !sops.isEmpty else { return }
        let members = sops.map { sop in
            let task = GridTask.instance(InstanceTask(study: record.uid, generation: generation, sop: sop))
            return TaskSpec(key: task.key, payload: task.payload(), lane: record.priority)
        }
        let study = GridTask.study(StudyTask(study: record.uid, generation: generation, sops: sops))
        // The study's shard holds its instance tasks, their fan-in group and the study task.
        _ = try await queues.shard(forRoutingKey: record.uid.rawValue).enqueueGroup(id: GridTask.groupID(study: record.uid, generation: generation), members: members,
                                         then: TaskSpec(key: study.key, payload: study.payload(), lane: record.priority))
        logger.info("study fanned out", metadata: ["study": "\(record.uid)", "instances": "\(sops.count)", "lane": "\(record.priority)", "generation": "\(generation)"])
    }
}
