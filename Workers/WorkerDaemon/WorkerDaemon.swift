import Audit
import DICOM
import Foundation
import Imaging
import Logging
import Metrics
import RadGridCore
import RedisClient
import Screening
import ServiceLifecycle
import StudyStore
import Synchronization
import TaskQueue
import Zstd

/// Settings of one worker process.
public struct WorkerSettings: Sendable {
    public var prefix: KeyPrefix = .default
    public var queueName: String = StudyTasks.defaultQueueName
    /// Tasks run at once (default: the number of cores).
    public var slots: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Largest decompressed instance accepted.
    public var maxInstanceBytes: Int = 512 << 20
    /// Instance results are downsampled to at most this many columns/rows.
    public var screeningSize: Int = 256
    public var screening: ScreeningConfig = .default
    public var name: String = TaskConsumer.defaultConsumerName()
    public var lease: Duration = .seconds(30)
    public var shutdownGrace: Duration = .seconds(20)
    public var heartbeatInterval: Duration = .seconds(2)

    public init() {}
}

/// The worker daemon: a `TaskConsumer` running the instance and study stages, plus a
/// heartbeat service. `services` is what `radgrid-worker` puts into its `ServiceGroup`.
public final class WorkerDaemon: Sendable {
    public let settings: WorkerSettings
    public let queue: TaskQueue
    public let store: StudyStore
    public let consumer: TaskConsumer
    public let heartbeat: WorkerHeartbeat
    let logger: Logger
    let engine: ScreeningEngine
    let stats = CounterBox()
    let metrics = WorkerMetrics()

    public init(client: RedisClient, settings: WorkerSettings, logger: Logger = Logger(label: "radgrid.worker")) {
        self.settings = settings
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.name)"
        self.logger = logger
        let configuration = TaskQueueConfiguration(prefix: settings.prefix, lease: settings.lease)
        queue = TaskQueue(client: client, name: settings.queueName, configuration: configuration, logger: logger)
        store = StudyStore(client: client, prefix: settings.prefix)
        engine = ScreeningEngine(config: settings.screening)
        let pipeline = Pipeline(queue: queue, store: store, settings: settings, engine: engine, logger: logger, metrics: metrics)
        let counters = stats
        consumer = TaskConsumer(queue: queue, configuration: .init(concurrency: settings.slots, shutdownGrace: settings.shutdownGrace, consumerName: settings.name)) { context in
            counters.withLock { $0.busy += 1 }
            do {
                try await pipeline.handle(context)
                counters.withLock { $0.busy -= 1; $0.record(success: true) }
            } catch {
                counters.withLock { $0.busy -= 1; $0.record(success: false) }
                throw error
            }
        }
        heartbeat = WorkerHeartbeat(client: client, prefix: settings.prefix, name: settings.name, slots: settings.slots,
                                    interval: settings.heartbeatInterval, counters: counters, logger: logger)
    }

    public var services: [any Service] { [consumer, heartbeat] }
}

final class CounterBox: Sendable {
    let state = Mutex(WorkerCounters())
    func withLock<T: Sendable>(_ body: (inout WorkerCounters) -> T) -> T { state.withLock { body(&$0) } }
}

struct WorkerCounters: Sendable {
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
    let images = Counter(label: "radgrid_worker_images_total")
    let studies = Counter(label: "radgrid_worker_studies_screened_total")
}

/// The stages. Data errors (corrupt zstd, unreadable DICOM, unsupported pixels, missing
/// blob) are permanent: the task is dead-lettered with the error code as its reason and the
/// study quarantined. Anything else (Redis) is retried by the queue; when the last attempt
/// fails the study is marked failed.
struct Pipeline: Sendable {
    let queue: TaskQueue
    let store: StudyStore
    let settings: WorkerSettings
    let engine: ScreeningEngine
    let logger: Logger
    let metrics: WorkerMetrics

    var actor: AuditActor { AuditActor(.worker, settings.name) }

    func handle(_ context: TaskContext) async throws {
        let key = context.key
        let stage = key.hasPrefix("i/") ? "instance" : key.hasPrefix("s/") ? "study" : "unknown"
        let started = WallClock.monotonicNanoseconds()
        do {
            switch stage {
            case "instance": try await instanceTask(context)
            case "study": try await studyTask(context)
            default: throw TaskFailure.permanent("worker.unknownTask")
            }
            metrics.timer(stage).recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started))
            metrics.stage(stage, outcome: "ok").increment()
        } catch let failure as TaskFailure {
            metrics.stage(stage, outcome: "permanent").increment()
            throw failure
        } catch let error as CodedError where Self.isDataError(error) {
            metrics.stage(stage, outcome: "permanent").increment()
            logger.warning("task failed permanently", metadata: ["task": "\(key)", "code": "\(error.code)"])
            if let study = try? StudyTasks.decode(context.payload).study {
                try? await markStudy(study, .quarantined, reason: error.code, detail: error.message)
            }
            throw TaskFailure.permanent(error.code)
        } catch {
            metrics.stage(stage, outcome: "error").increment()
            if context.task.failures + 1 >= context.task.maxAttempts, let study = try? StudyTasks.decode(context.payload).study {
                let code = (error as? CodedError)?.code ?? "worker.error"
                try? await markStudy(study, .failed, reason: code, detail: "attempts exhausted")
            }
            throw error
        }
    }

    static func isDataError(_ error: CodedError) -> Bool {
        error is DICOMError || error is ZstdError || error is ImagingError || error is ScreeningError
            || (error as? WorkerError).map { $0.code != "worker.redis" } ?? false
    }

    func markStudy(_ study: String, _ state: StudyState, reason: String, detail: String) async throws {
        try await store.transition(study: study, to: state, from: [.received, .queued, .processing], actor: actor,
                                   action: "study.\(state.rawValue)", details: "reason=\(reason)", fields: ["reason": reason])
        logger.notice("study marked \(state.rawValue)", metadata: ["study": "\(study)", "reason": "\(reason)", "detail": "\(detail)"])
    }

    // MARK: Instance stage

    func instanceTask(_ context: TaskContext) async throws {
        let (study, sops) = try StudyTasks.decode(context.payload)
        guard let sop = sops.first else { throw WorkerError(code: "worker.badPayload", message: "instance task names no SOP instance") }
        let state = try await client.send("HGET", RedisArgument(store.studyKey(study)), "state").string
        switch state.flatMap(StudyState.init(rawValue:)) {
        case .queued?:
            _ = try? await store.transition(study: study, to: .processing, from: [.queued], actor: actor, action: "study.processing")
        case .failed?, .quarantined?, nil:
            return // nothing to do for a study that was given up (or deleted); complete quietly
        default: break
        }
        guard let compressed = try await store.compressedInstance(study: study, sop: sop) else {
            throw WorkerError(code: "worker.blobMissing", message: "compressed instance is missing")
        }
        let raw = try Zstd.decompress(compressed, maxOutputSize: settings.maxInstanceBytes)
        let file = try DICOMFile.read(raw, options: ReadOptions(allowTruncated: true))
        let result = try InstanceResult.make(from: file, maxSize: settings.screeningSize)
        context.setResult(try result.encoded())
        metrics.images.increment()
    }

    var client: RedisClient { queue.client }

    // MARK: Study stage

    func studyTask(_ context: TaskContext) async throws {
        let (study, sops) = try StudyTasks.decode(context.payload)
        guard let record = try await store.study(study) else { return }
        let screened = StudyTasks.screenedStream(queue)
        let handoff = Effect(command: "XADD", key: screened, arguments: ["MAXLEN", "~", "100000", "*", "study", study].map { Array($0.utf8) })
        switch record.state {
        case .queued, .processing: break
        case .failed, .quarantined, .received: return
        default:
            context.addEffect(handoff) // screened before; a lost completion: hand off again
            return
        }
        // Gather the instance results (one pipelined round trip).
        let replies = try await client.pipeline(sops.map { RedisCommand("GET", RedisArgument(queue.keys.result(StudyTasks.instanceKey(study: study, sop: $0)))) })
        var bySeries: [String: [InstanceResult]] = [:]
        var order: [String] = []
        var missing = 0
        for reply in replies {
            guard let bytes = reply.bytes, !reply.isNull else { missing += 1; continue }
            let result = try InstanceResult.decode(bytes)
            if bySeries[result.header.series] == nil { order.append(result.header.series) }
            bySeries[result.header.series, default: []].append(result)
        }
        guard !order.isEmpty else { throw WorkerError(code: "worker.noImages", message: "no instance of the study could be read") }
        var results: [ScreeningResult] = []
        for series in order {
            let items = bySeries[series]!
            let first = items[0].header
            let info = SeriesInfo(seriesInstanceUID: series, modality: first.modality, bodyPart: first.bodyPart)
            let pre = try SeriesPreprocessor.process(items.map(\.sliceInput), info: info, options: .screening)
            results.append(try engine.run(pre))
        }
        let urgency = results.map(\.urgency).max() ?? .routine
        let score = results.map(\.score).max() ?? 0
        let codes = Array(Set(results.flatMap(\.findings).filter { $0.probability >= 0.5 }.map(\.code))).sorted()
        var fields: [String: String] = [
            "urgency": urgency.rawValue, "score": String(format: "%.3f", score), "findings": codes.joined(separator: ","),
            "series": String(order.count), "screenedImages": String(sops.count - missing),
        ]
        var details = "urgency=\(urgency.rawValue);score=\(String(format: "%.3f", score));findings=\(codes.joined(separator: ","))"
        if urgency == .critical && record.priority != .stat {
            fields["priority"] = StudyPriority.stat.rawValue
            fields["priorityRaisedFrom"] = record.priority.rawValue
            details += ";priority=stat"
        } else if urgency == .urgent && record.priority > .urgent {
            fields["priority"] = StudyPriority.urgent.rawValue
            fields["priorityRaisedFrom"] = record.priority.rawValue
            details += ";priority=urgent"
        }
        do {
            try await store.transition(study: study, to: .screened, from: [.queued, .processing], actor: actor,
                                       action: urgency == .critical ? "study.screened.critical" : "study.screened", details: details, fields: fields)
        } catch let error as StudyStoreError where error.code == "study.invalidTransition" {
            // Another delivery got there first; still hand off (the coordinator is idempotent).
        }
        metrics.studies.increment()
        context.addEffect(handoff)
        logger.info("study screened", metadata: ["study": "\(study)", "urgency": "\(urgency.rawValue)", "images": "\(sops.count - missing)"])
    }
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

    public static func key(prefix: KeyPrefix, name: String) -> String { prefix.value + "workers:" + name }
    public static func indexKey(prefix: KeyPrefix) -> String { prefix.value + "workers" }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await beat(state: "running")
                try? await Task.sleep(for: interval)
            }
        }
        await beat(state: "draining")
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
            ])
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }
}
