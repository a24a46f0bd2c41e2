import Audit
import BlobSealing
import DICOM
import Foundation
import GridContract
import Imaging
import Logging
import Metrics
import RadGridCore
import RedisClient
import Screening
import Inference
import ServiceLifecycle
import StudyLifecycle
import StudyStore
import Synchronization
import TaskQueue
import Zstd

/// Settings of one worker process.
public struct WorkerSettings: Sendable {
    public var prefix: KeyPrefix = .default
    /// Shards of the task queues (`--queue-shards`): the same in every process of the grid.
    public var queueShards = 1
    /// Tasks run at once (default: `defaultSlots`).
    public var slots: Int = WorkerSettings.defaultSlots
    /// Twice the cores: an instance task spends part of its time waiting on Redis round trips
    /// (measured: 4 slots on a 2-core machine cut a 100-image study's processing by a third).
    public static let defaultSlots = 2 * ProcessInfo.processInfo.activeProcessorCount
    /// Largest decompressed instance accepted.
    public var maxInstanceBytes: Int = 512 << 20
    /// Instance results are downsampled to at most this many columns/rows.
    public var screeningSize: Int = 256
    public var screening: ScreeningConfig = .default
    public var name: String = TaskConsumer.defaultConsumerName()
    public var lease: Duration = .seconds(30)
    public var shutdownGrace: Duration = .seconds(20)
    public var heartbeatInterval: Duration = .seconds(2)
    public var lifecycle = LifecycleSettings()
    /// Opens sealed instances; nil reads only unsealed ones.
    public var blobKeys: BlobKeyring?
    /// Which stages this worker serves (`--stages`): decoding and rule screening (the `tasks`
    /// queue's instance and study tasks) and/or model inference (the `ai` queue).
    public var stages: Set<WorkerStage> = Set(WorkerStage.allCases)
    /// The models (verified manifests). The study stage hands a study to the ai stage when one
    /// of them screens one of its series; empty keeps the rule-based screeners only.
    public var models: ModelCatalog = .empty
    /// How the ai stage compiles its models (device, threads).
    public var inference = CompileOptions()
    /// Model tasks run at once (each inference already uses several cores).
    public var modelSlots: Int = 2

    public init() {}
}

/// A worker's stages. Instance and study tasks share the `tasks` queue, so a worker serves both
/// or neither.
public enum WorkerStage: String, Sendable, CaseIterable {
    case instance, study, ai

    /// Parses `instance,study,ai`; names the problem when the set cannot be served.
    public static func parse(_ text: String) throws -> Set<WorkerStage> {
        var stages = Set<WorkerStage>()
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let stage = WorkerStage(rawValue: part) else {
                throw WorkerError(code: "worker.stages", message: "unknown stage '\(part)' (stages: instance, study, ai)")
            }
            stages.insert(stage)
        }
        guard !stages.isEmpty else { throw WorkerError(code: "worker.stages", message: "no stage named (stages: instance, study, ai)") }
        guard stages.contains(.instance) == stages.contains(.study) else {
            throw WorkerError(code: "worker.stages", message: "instance and study tasks share one queue: name both or neither")
        }
        return stages
    }
}

/// Errors of the worker daemon.
public struct WorkerError: CodedError, Equatable {
    public let code: String
    public let message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// The worker daemon: a `TaskConsumer` running the instance and study stages, plus a
/// heartbeat. `services` is what `radgrid-worker` puts into its `ServiceGroup` after the
/// Redis client.
public final class WorkerDaemon: Sendable {
    public let settings: WorkerSettings
    /// The task queue and the ai stage's queue, each in `settings.queueShards` shards.
    public let queues: ShardedTaskQueue
    public let modelQueues: ShardedTaskQueue
    /// The first shard of each (the whole queue when unsharded).
    public var queue: TaskQueue { queues.shards[0] }
    public var modelQueue: TaskQueue { modelQueues.shards[0] }
    public let store: StudyStore
    /// One consumer per queue this worker serves (`tasks`, `ai`).
    public let consumers: [TaskConsumer]
    public let heartbeat: WorkerHeartbeat
    let stats = CounterBox()

    /// Compiles the models first when the worker serves the ai stage: a model that does not
    /// compile stops the worker at start, with the model's name in the error.
    public init(client: RedisClient, settings: WorkerSettings, logger: Logger = Logger(label: "radgrid.worker")) throws {
        self.settings = settings
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.name)"
        let configuration = TaskQueueConfiguration(prefix: settings.prefix, lease: settings.lease)
        queues = ShardedTaskQueue(client: client, name: GridKeys.taskQueue, shardCount: settings.queueShards, configuration: configuration, logger: logger)
        modelQueues = ShardedTaskQueue(client: client, name: GridKeys.modelQueue, shardCount: settings.queueShards, configuration: configuration, logger: logger)
        store = StudyStore(client: client, prefix: settings.prefix, logger: logger, keyring: settings.blobKeys)
        let models = settings.stages.contains(.ai) && !settings.models.isEmpty
            ? try ModelScreeners(catalog: settings.models, options: settings.inference, logger: logger) : ModelScreeners(screeners: [])
        let pipeline = Pipeline(queues: queues, modelQueues: modelQueues, store: store, settings: settings, engine: ScreeningEngine(config: settings.screening),
                                models: models, machine: StudyStateMachine(settings: settings.lifecycle), logger: logger, metrics: WorkerMetrics())
        let counters = stats
        let handler: @Sendable (TaskContext) async throws -> Void = { context in
            counters.withLock { $0.busy += 1 }
            do {
                try await pipeline.handle(context)
                counters.withLock { $0.busy -= 1; $0.record(success: true) }
            } catch {
                counters.withLock { $0.busy -= 1; $0.record(success: false) }
                throw error
            }
        }
        var consumers: [TaskConsumer] = []
        if settings.stages.contains(.instance) {
            consumers.append(TaskConsumer(queues: queues.shards, configuration: .init(concurrency: settings.slots, shutdownGrace: settings.shutdownGrace,
                                                                             consumerName: settings.name), handler: handler))
        }
        if settings.stages.contains(.ai) {
            consumers.append(TaskConsumer(queues: modelQueues.shards, configuration: .init(concurrency: settings.modelSlots, shutdownGrace: settings.shutdownGrace,
                                                                                  consumerName: settings.name), handler: handler))
        }
        self.consumers = consumers
        let slots = (settings.stages.contains(.instance) ? settings.slots : 0) + (settings.stages.contains(.ai) ? settings.modelSlots : 0)
        heartbeat = WorkerHeartbeat(client: client, prefix: settings.prefix, name: settings.name, slots: slots,
                                    interval: settings.heartbeatInterval, counters: counters, logger: logger)
    }

    /// The first consumer (the `tasks` queue's, unless the worker serves only the ai stage).
    public var consumer: TaskConsumer { consumers[0] }

    /// The heartbeat first: a group stops services in reverse order, so the consumers drain
    /// while the heartbeat still reports the worker, as draining.
    public var services: [any Service] { [heartbeat] + consumers.map { DrainReporting(consumer: $0, counters: stats) } }
}

/// Runs the consumer and marks the worker draining as soon as its graceful shutdown begins.
struct DrainReporting: Service {
    let consumer: TaskConsumer
    let counters: CounterBox

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await consumer.run()
        } onGracefulShutdown: {
            counters.withLock { $0.draining = true }
        }
    }
}

final class CounterBox: Sendable {
    let state = Mutex(WorkerCounters())
    func withLock<T: Sendable>(_ body: (inout WorkerCounters) -> T) -> T { state.withLock { body(&$0) } }
}

struct WorkerCounters: Sendable {
    var draining = false
    var busy = 0
    var done = 0
    var failed = 0
    /// Completion times (monotonic seconds) of the last minute, for the throughput figure.
    var recent: [Double] = []

    mutating func record(success: Bool) {
        if success { done += 1 } else { failed += 1 }
        let now = Double(WallClock.monotonicNanoseconds()) / 1e9
        recent.append(now)
        if recent.count > 4096 || (recent.first ?? now) < now - 60 { recent.removeAll { $0 < now - 60 } }
    }

    func ratePerSecond(window: Double = 10) -> Double {
        let now = Double(WallClock.monotonicNanoseconds()) / 1e9
        return Double(recent.filter { $0 >= now - window }.count) / window
    }
}

struct WorkerMetrics: Sendable {
    func stage(_ stage: String, outcome: String) -> Counter {
        Counter(label: "radgrid_worker_tasks_total", dimensions: [("stage", stage), ("outcome", outcome)])
    }
    func timer(_ stage: String) -> Timer {
        Timer(label: "radgrid_worker_stage_seconds", dimensions: [("stage", stage)], preferredDisplayUnit: .seconds)
    }
    func instances(_ outcome: String) -> Counter { Counter(label: "radgrid_worker_instances_total", dimensions: [("outcome", outcome)]) }
    let studies = Counter(label: "radgrid_worker_studies_screened_total")
}

/// The stages. An instance that cannot be read fails alone: its task completes with a
/// `failed` result and the study goes on without it. Anything else (Redis) is retried by the
/// queue; a task whose attempts run out, or whose worker keeps dying, is dead-lettered and
/// the coordinators hear of it from the dead-letter stream.
struct Pipeline: Sendable {
    let queues: ShardedTaskQueue
    let modelQueues: ShardedTaskQueue
    let store: StudyStore
    let settings: WorkerSettings
    let engine: ScreeningEngine
    let models: ModelScreeners
    let machine: StudyStateMachine
    let logger: Logger
    let metrics: WorkerMetrics

    var actor: AuditActor { AuditActor(.worker, settings.name) }
    var client: RedisClient { queues.shards[0].client }

    func handle(_ context: TaskContext) async throws {
        let task: GridTask
        do {
            task = try GridTask.decode(context.payload)
        } catch {
            metrics.stage("unknown", outcome: "permanent").increment()
            throw TaskFailure.permanent(error.code)
        }
        let started = WallClock.monotonicNanoseconds()
        do {
            switch task {
            case .instance(let instance): try await instanceTask(instance, context)
            case .study(let study): try await studyTask(study, context)
            case .model(let model): try await modelTask(model, context)
            }
            metrics.timer(task.stage).recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started))
            metrics.stage(task.stage, outcome: "ok").increment()
        } catch {
            metrics.stage(task.stage, outcome: "error").increment()
            throw error
        }
    }

    // MARK: Instance stage

    func instanceTask(_ task: InstanceTask, _ context: TaskContext) async throws {
        // The study's state and the instance's bytes in one round trip.
        let work = try await store.instanceWork(study: task.study, sop: task.sop)
        guard let state = work.state, work.generation == task.generation, !state.isTerminal else {
            return // a study given up, requeued under a new generation, or expired: nothing to do
        }
        if state == .queued {
            try await store.handle(.instanceStarted(generation: task.generation), study: task.study, actor: actor, machine: machine)
        }
        let result = work.damaged.map { InstanceTaskResult.failed(code: $0) } ?? read(task, compressed: work.compressed)
        metrics.instances(result.outcome.label).increment()
        context.setResult(try result.encoded())
    }

    /// Decompresses, reads and preprocesses one instance; data problems become a `failed`
    /// result (the instance fails alone).
    func read(_ task: InstanceTask, compressed: [UInt8]?) -> InstanceTaskResult {
        guard let compressed else { return .failed(code: "worker.blobMissing") }
        do {
            let raw = try Zstd.decompress(compressed, maxOutputSize: settings.maxInstanceBytes)
            let file = try DICOMFile.read(raw, options: ReadOptions(allowTruncated: true))
            let descriptors = InstanceDescriptors(dataSet: file.dataSet)
            guard file.dataSet.contains(.pixelData) else {
                return .nonImage(kind: StudyStore.clean(file.dataSet.string(.modality) ?? "OT").ifEmpty("OT"), descriptors: descriptors)
            }
            do {
                return .slice(try InstanceResult.make(from: file, maxSize: settings.screeningSize))
            } catch let error as ImagingError where error.code == "imaging.unsupported" {
                // Colour, multi-frame: an image for the expert, not for the CT screeners. Colour
                // takes the colour path: a thumbnail for the worklist.
                let image = try file.decodePixels()
                let thumbnail = image.samplesPerPixel == 3 ? try? Thumbnail.colourPNG(image) : nil
                return .unscreened(reason: error.message, series: file.dataSet.string(.seriesInstanceUID) ?? "", descriptors: descriptors, thumbnail: thumbnail)
            }
        } catch let error as CodedError {
            logger.notice("instance unreadable", metadata: ["study": "\(task.study)", "sop": "\(task.sop)", "code": "\(error.code)"])
            return .failed(code: error.code)
        } catch {
            return .failed(code: "worker.unreadable")
        }
    }

    // MARK: Study stage

    /// The instance results of one run of a study, by series.
    struct Gathered {
        var resultKeys: [String] = []
        var bySeries: [String: [InstanceResult]] = [:]
        var order: [String] = []
        var outcomes: [(SOPInstanceUID, InstanceOutcome)] = []
        var failures: [FailedInstance] = []
        var unscreened = 0, nonImage = 0
        var headers: [InstanceDescriptors] = []
        var thumbnails: [String: [UInt8]] = [:]

        var series: [(String, [InstanceResult])] { order.map { ($0, bySeries[$0]!) } }

        static func info(_ uid: String, _ items: [InstanceResult]) -> SeriesInfo {
            SeriesInfo(seriesInstanceUID: uid, modality: items[0].header.modality, bodyPart: items[0].header.bodyPart)
        }
    }

    /// Gathers the instance results (one pipelined round trip).
    func gather(study: StudyUID, generation: Int, sops: [SOPInstanceUID]) async throws -> Gathered {
        var g = Gathered()
        let queue = queues.shard(forRoutingKey: study.rawValue)
        g.resultKeys = sops.map { queue.keys.result(GridTask.instanceKey(study: study, generation: generation, sop: $0)) }
        let replies = try await client.pipeline(g.resultKeys.map { RedisCommand("GET", RedisArgument($0)) })
        for (sop, result) in zip(sops, await Self.decodeResults(replies)) {
            g.outcomes.append((sop, result.outcome))
            if let descriptors = result.descriptors { g.headers.append(descriptors) }
            switch result {
            case .slice(let slice):
                if g.bySeries[slice.header.series] == nil { g.order.append(slice.header.series) }
                g.bySeries[slice.header.series, default: []].append(slice)
            case .unscreened(_, let series, _, let thumbnail):
                g.unscreened += 1
                if let thumbnail, g.thumbnails[series] == nil { g.thumbnails[series] = thumbnail }
            case .nonImage: g.nonImage += 1
            case .failed(let code): g.failures.append(FailedInstance(sop: sop, code: code))
            }
        }
        return g
    }

    func studyTask(_ task: StudyTask, _ context: TaskContext) async throws {
        guard let record = try await store.record(task.study), record.generation == task.generation else { return }
        // In the task's own shard: the completion script writes it.
        let handoff = Effect(command: "XADD", key: store.keys.screenedStream(queue: context.queue.name), arguments: ["MAXLEN", "~", "100000", "*", "study", task.study.rawValue].map { Array($0.utf8) })
        switch record.state {
        case .queued, .processing: break
        case .screened, .routing:
            context.addEffect(handoff) // screened before, its completion lost: hand off again
            return
        default: return
        }
        var g = try await gather(study: task.study, generation: task.generation, sops: task.sops)
        try await store.recordOutcomes(task.study, g.outcomes)
        let event: StudyEvent
        if g.order.isEmpty && g.unscreened == 0 {
            event = g.failures.isEmpty ? .nonDiagnostic(nonImageInstances: g.nonImage, generation: task.generation)
                : .unreadable(g.failures, generation: task.generation)
        } else {
            var outcome = try await screen(g.series, unscreened: g.unscreened, nonImage: g.nonImage, failures: g.failures, thumbnails: &g.thumbnails)
            outcome.headers = InstanceDescriptors.study(g.headers)
            if settings.models.entries.contains(where: { entry in g.series.contains { entry.manifest.matches(Gathered.info($0.0, $0.1)) } }) {
                // A model screens one of its series: the ai stage finishes the screen. The
                // instance results stay for it (they expire with the queue's result TTL).
                try await store.recordThumbnails(task.study, g.thumbnails)
                try await handToModels(ModelTask(study: task.study, generation: task.generation, sops: task.sops), outcome: outcome, lane: record.priority)
                return
            }
            event = .screened(outcome, generation: task.generation)
        }
        try await store.recordThumbnails(task.study, g.thumbnails)
        try await store.handle(event, study: task.study, actor: actor, machine: machine)
        // The instance results have served their purpose.
        for key in g.resultKeys { context.addEffect(Effect(command: "DEL", key: key, arguments: [])) }
        if case .screened(let outcome, _) = event {
            metrics.studies.increment()
            context.addEffect(handoff)
            logger.info("study screened", metadata: ["study": "\(task.study)", "urgency": "\(outcome.urgency.rawValue)", "images": "\(outcome.screenedImages)",
                                                     "failed": "\(g.failures.count)"])
        }
    }

    /// Keeps the rule-based screen for the model task and enqueues it (idempotent by key: a
    /// study task run twice enqueues one model task).
    func handToModels(_ task: ModelTask, outcome: ScreeningOutcome, lane: Priority) async throws {
        let key = GridTask.model(task).key
        let modelQueue = modelQueues.shard(forRoutingKey: task.study.rawValue)
        let pending = GridKeys(prefix: settings.prefix).pendingScreening(key, queue: modelQueue.name)
        _ = try await client.send("SET", RedisArgument(pending), RedisArgument(Array(try JSONEncoder().encode(outcome))), "EX", "86400")
        _ = try await modelQueue.enqueue(TaskSpec(key: key, payload: GridTask.model(task).payload(), lane: lane))
        logger.info("study handed to the ai stage", metadata: ["study": "\(task.study)", "lane": "\(lane)"])
    }

    // MARK: AI stage

    func modelTask(_ task: ModelTask, _ context: TaskContext) async throws {
        guard let record = try await store.record(task.study), record.generation == task.generation,
              [.queued, .processing].contains(record.state) else { return }
        guard !models.isEmpty else { throw TaskFailure.permanent("worker.noModels") }
        let key = GridTask.model(task).key
        let pending = GridKeys(prefix: settings.prefix).pendingScreening(key, queue: context.queue.name)
        guard let saved = try await client.send("GET", RedisArgument(pending)).bytes else {
            throw TaskFailure.permanent("worker.screeningMissing") // expired: the study is failed and can be requeued
        }
        var outcome: ScreeningOutcome
        do { outcome = try JSONDecoder().decode(ScreeningOutcome.self, from: Data(saved)) } catch {
            throw TaskFailure.permanent("worker.screeningUnreadable")
        }
        let g = try await gather(study: task.study, generation: task.generation, sops: task.sops)
        var ran: [ModelProvenance] = outcome.models ?? []
        for (uid, items) in g.series {
            let info = Gathered.info(uid, items)
            let screeners = models.screeners(for: info)
            guard !screeners.isEmpty else { continue }
            let pre = try SeriesPreprocessor.process(items.map(\.sliceInput), info: info, options: .screening)
            for screener in screeners {
                let output = try await screener.screen(pre)
                if !ran.contains(screener.provenance) { ran.append(screener.provenance) }
                outcome.urgency = max(outcome.urgency, output.urgency)
                outcome.score = max(outcome.score, output.suspicionScore)
                for finding in output.findings {
                    outcome.findings.append(ScreeningFinding(code: finding.code, probability: finding.probability, series: try? SeriesUID(uid),
                                                             source: "\(output.screenerID)@\(output.screenerVersion)", model: output.model))
                }
                logger.debug("model screened a series", metadata: ["study": "\(task.study)", "model": "\(screener.provenance)",
                                                                   "findings": "\(output.findings.count)", "ms": "\(Int(output.runTimeMs))"])
            }
        }
        outcome.models = ran
        try await store.handle(.screened(outcome, generation: task.generation), study: task.study, actor: actor, machine: machine)
        // The hand-off to the router and the clean-up live in the tasks queue's slot, apart from
        // this task's: a lost hand-off is repaired by the sweeper, results expire by TTL.
        let handoffStream = store.keys.screenedStream(queue: queues.shard(forRoutingKey: task.study.rawValue).name)
        var tail = [RedisCommand(["XADD", RedisArgument(handoffStream), "MAXLEN", "~", "100000", "*", "study", RedisArgument(task.study.rawValue)])]
        tail += g.resultKeys.map { RedisCommand("DEL", RedisArgument($0)) }
        for reply in try await client.pipeline(tail) { _ = try reply.throwingServerError() }
        context.addEffect(Effect(command: "DEL", key: pending, arguments: []))
        metrics.studies.increment()
        logger.info("study screened", metadata: ["study": "\(task.study)", "urgency": "\(outcome.urgency.rawValue)", "images": "\(outcome.screenedImages)",
                                                 "models": "\(ran.map(\.description).joined(separator: ","))"])
    }

    /// Runs the screeners on each greyscale series, and makes its worklist thumbnail.
    /// The instance results, decoded on every core.
    static func decodeResults(_ replies: [RedisValue]) async -> [InstanceTaskResult] {
        func decode(_ reply: RedisValue) -> InstanceTaskResult {
            guard let bytes = reply.bytes, !reply.isNull else {
                return .failed(code: "worker.noResult") // dead-lettered (its worker kept dying) or expired
            }
            return (try? InstanceTaskResult.decode(bytes)) ?? .failed(code: "worker.badResult")
        }
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, replies.count / 16))
        guard chunks > 1 else { return replies.map(decode) }
        let size = (replies.count + chunks - 1) / chunks
        return await withTaskGroup(of: (Int, [InstanceTaskResult]).self) { group in
            for chunk in 0..<chunks {
                let part = Array(replies[min(replies.count, chunk * size)..<min(replies.count, (chunk + 1) * size)])
                group.addTask { (chunk, part.map(decode)) }
            }
            var parts = [[InstanceTaskResult]](repeating: [], count: chunks)
            for await (chunk, decoded) in group { parts[chunk] = decoded }
            return parts.flatMap { $0 }
        }
    }

    func screen(_ series: [(String, [InstanceResult])], unscreened: Int, nonImage: Int, failures: [FailedInstance],
                thumbnails: inout [String: [UInt8]]) async throws -> ScreeningOutcome {
        var results: [ScreeningResult] = []
        for (uid, items) in series {
            let first = items[0].header
            let info = SeriesInfo(seriesInstanceUID: uid, modality: first.modality, bodyPart: first.bodyPart)
            let pre = try SeriesPreprocessor.process(items.map(\.sliceInput), info: info, options: .screening)
            // The thumbnail alongside the screeners.
            async let thumbnail: [UInt8]? = try? Thumbnail.png(pre, maxDimension: 128)
            results.append(try await engine.runConcurrently(pre))
            thumbnails[uid] = await thumbnail
        }
        var findings: [ScreeningFinding] = []
        for result in results {
            for output in result.outputs {
                for finding in output.findings {
                    findings.append(ScreeningFinding(code: finding.code, probability: finding.probability,
                                                     series: result.seriesInstanceUID.flatMap { try? SeriesUID($0) },
                                                     source: "\(output.screenerID)@\(output.screenerVersion)"))
                }
            }
        }
        return ScreeningOutcome(urgency: results.map(\.urgency).max() ?? .routine, score: results.map(\.score).max() ?? 0, findings: findings,
                                series: series.count, screenedImages: series.reduce(0) { $0 + $1.1.count },
                                nonImageInstances: nonImage, failedInstances: failures)
    }
}

extension InstanceOutcome {
    var label: String {
        switch self {
        case .image: "image"
        case .nonImage: "nonimage"
        case .failed: "failed"
        }
    }
}

extension String {
    func ifEmpty(_ fallback: String) -> String { isEmpty ? fallback : self }
}

/// Publishes `rg:workers:<name>` (hash, TTL 3 heartbeats) and `rg:workers` (zset name → last
/// beat) so `radgridctl status` can list live workers, their busy slots and throughput.
public struct WorkerHeartbeat: Service {
    let client: RedisClient
    let prefix: KeyPrefix
    let name: String
    let slots: Int
    let interval: Duration
    let counters: CounterBox
    let logger: Logger
    let startedAt = WallClock.nowMilliseconds()

    public static func key(prefix: KeyPrefix, name: String) -> String { GridKeys(prefix: prefix).worker(name) }
    public static func indexKey(prefix: KeyPrefix) -> String { GridKeys(prefix: prefix).workers }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await beat(state: counters.withLock { $0.draining } ? "draining" : "running")
                try? await Task.sleep(for: interval)
            }
        }
        await beat(state: "stopped")
    }

    func beat(state: String) async {
        let snapshot = counters.withLock { ($0.busy, $0.done, $0.failed, $0.ratePerSecond()) }
        let key = Self.key(prefix: prefix, name: name)
        let ttl = max(3, Int(interval.components.seconds) * 3)
        let fields: [(String, String)] = [
            ("name", name), ("pid", String(getpid())), ("slots", String(slots)), ("busy", String(snapshot.0)),
            ("done", String(snapshot.1)), ("failed", String(snapshot.2)), ("rate", String(format: "%.2f", snapshot.3)),
            ("state", state), ("started", String(startedAt)), ("seen", String(WallClock.nowMilliseconds())),
        ]
        do {
            _ = try await client.pipeline([
                RedisCommand(["HSET", RedisArgument(key)] + fields.flatMap { [RedisArgument($0.0), RedisArgument($0.1)] }),
                RedisCommand("EXPIRE", RedisArgument(key), RedisArgument(ttl)),
                RedisCommand("ZADD", RedisArgument(Self.indexKey(prefix: prefix)), RedisArgument(WallClock.nowMilliseconds()), RedisArgument(name)),
                // Workers gone for an hour leave the index (each worker prunes on its beat).
                RedisCommand("ZREMRANGEBYSCORE", RedisArgument(Self.indexKey(prefix: prefix)), "-inf", RedisArgument(WallClock.nowMilliseconds() - 3_600_000)),
            ])
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }
}
