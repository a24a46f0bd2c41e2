import Crypto
import Audit
import BlobSealing
import DICOM
import DIMSE
import Foundation
import Gateway
import GridContract
import Logging
import Metrics
import RadGridCore
import RedisClient
import ServiceLifecycle
import StudyStore
import Zstd

/// Sends results back to the sites' PACS over C-STORE: the signed report as a Basic Text SR
/// when a case completes, the AI pre-screen as a Basic Text SR when a study is screened.
/// Jobs wait in a Redis outbox (`dimse:{out}:*`): leased per attempt, retried with backoff,
/// dead-lettered after `maxAttempts` (radgridctl dimse outbox / retry), so a PACS that is down
/// delays results and loses none.
public struct ResultSender: Service {
    public struct Settings: Sendable {
        public var name = "dimse-\(ProcessInfo.processInfo.processIdentifier)"
        public var callingAETitle = "RADGRID"
        public var maxAttempts = 8
        /// First retry after this; doubling up to `maxBackoff`.
        public var backoff: Duration = .seconds(30)
        public var maxBackoff: Duration = .seconds(3600)
        public var lease: Duration = .seconds(120)
        public var poll: Duration = .seconds(1)
        /// Dead jobs older than this are deleted.
        public var deadRetention: Duration = .seconds(30 * 86_400)
        /// Shards of the task queue (`--queue-shards`): one hand-off stream each.
        public var queueShards = 1
        public init() {}
    }

    static let consumerGroup = "dimse-results"
    static let enqueueScript = RedisScript(DIMSEGatewayLua.enqueue)
    static let claimScript = RedisScript(DIMSEGatewayLua.claim)
    static let settleScript = RedisScript(DIMSEGatewayLua.settle)
    static let requeueScript = RedisScript(DIMSEGatewayLua.requeue)

    let client: RedisClient
    let keys: GridKeys
    let store: StudyStore
    let network: SiteNetwork
    let settings: Settings
    let logger: Logger

    /// `blobKeys` opens the sealed instance the patient attributes are copied from.
    public init(client: RedisClient, prefix: KeyPrefix, settings: Settings = Settings(), logger: Logger, blobKeys: BlobKeyring? = nil) {
        self.client = client
        self.keys = GridKeys(prefix: prefix)
        self.store = StudyStore(client: client, prefix: prefix, keyring: blobKeys)
        self.network = SiteNetwork(client: client, prefix: prefix)
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        var consumers = [consumer(keys.routerEvents) { entry in try await caseEvent(entry) }]
        // Each task queue shard hands its screened studies off on a stream of its own.
        for shard in GridKeys.queueNames(GridKeys.taskQueue, shards: settings.queueShards) { consumers.append(consumer(keys.screenedStream(queue: shard)) { entry in try await screened(entry) }) }
        for consumer in consumers { try await consumer.ensureGroup() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for consumer in consumers { group.addTask { try await consumer.run() } }
            group.addTask { await cancelWhenGracefulShutdown { await self.deliveryLoop() } }
            try await group.waitForAll()
        }
    }

    func consumer(_ stream: String, handler: @escaping @Sendable (StreamEntry) async throws -> Void) -> StreamConsumer {
        var configuration = StreamConsumer.Configuration(stream: stream, group: Self.consumerGroup, consumer: settings.name)
        configuration.block = .milliseconds(500)
        // Results from before this sender existed are not sent: only what happens from now on.
        configuration.startAt = "$"
        return StreamConsumer(client: client, configuration: configuration, logger: logger, handler: handler)
    }

    // MARK: Events → jobs

    func caseEvent(_ entry: StreamEntry) async throws {
        guard let event = try? CaseEventEntry.parse(id: entry.id, fields: entry.text), case .completed = event.event,
              let study = try await store.study(forCase: event.caseID), let record = try await store.record(study),
              let report = try await store.report(study), report.status != .draft else { return }
        try await enqueue(.report, study: study, site: record.site, version: String((report.addenda.last?.hash ?? report.hash).prefix(16)))
    }

    func screened(_ entry: StreamEntry) async throws {
        guard let text = entry.text["study"], let study = try? StudyUID(text), let record = try await store.record(study),
              record.screening != nil else { return }
        try await enqueue(.screening, study: study, site: record.site, version: String(record.generation))
    }

    /// Queues a result for the site's PACS, if it has one that takes this kind.
    public func enqueue(_ kind: ResultKind, study: StudyUID, site: SiteID, version: String) async throws {
        guard let destination = try await network.destination(site: site), destination.send.contains(kind) else { return }
        let job = keys.dicomOutboxJobPrefix + "\(kind.rawValue):\(study.rawValue):\(version)"
        let queued = try await client.evalScript(Self.enqueueScript, keys: [RedisArgument(keys.dicomOutboxDue), RedisArgument(job)],
                                                 arguments: [RedisArgument(WallClock.nowMilliseconds()), RedisArgument(kind.rawValue),
                                                             RedisArgument(study.rawValue), RedisArgument(site.rawValue), RedisArgument(version)])
        if queued.int == 1 { logger.info("result queued for the site's PACS", metadata: ["kind": "\(kind.rawValue)", "site": "\(site)"]) }
    }

    // MARK: Delivery

    struct Job: Sendable {
        var key: String
        var kind: ResultKind
        var study: StudyUID
        var site: SiteID
        var version: String
        var attempt: Int
    }

    func deliveryLoop() async {
        var lastPrune = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            do {
                let jobs = try await claim(limit: 8)
                for job in jobs { await deliver(job) }
                if ContinuousClock.now - lastPrune > .seconds(600) {
                    try await pruneDead()
                    lastPrune = .now
                }
                if jobs.isEmpty { try? await Task.sleep(for: settings.poll) }
            } catch {
                if Task.isCancelled { break }
                logger.warning("result delivery pass failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func claim(limit: Int) async throws -> [(Job, token: String)] {
        let token = settings.name + "-" + UUID().uuidString
        let reply = try await client.evalScript(Self.claimScript, keys: [RedisArgument(keys.dicomOutboxDue), RedisArgument(keys.dicomOutboxDead)],
                                                arguments: [RedisArgument(WallClock.nowMilliseconds()), RedisArgument(Int(settings.lease.components.seconds * 1000)),
                                                            RedisArgument(limit), RedisArgument(token), RedisArgument(settings.maxAttempts)])
        return (reply.array ?? []).compactMap { row in
            let fields = row.array ?? []
            guard fields.count == 6, let key = fields[0].string, let kind = fields[1].string.flatMap(ResultKind.init(rawValue:)),
                  let study = fields[2].string.flatMap({ try? StudyUID($0) }), let site = fields[3].string.flatMap({ try? SiteID($0) }),
                  let version = fields[4].string else { return nil }
            return (Job(key: key, kind: kind, study: study, site: site, version: version, attempt: Int(fields[5].int ?? 1)), token: token)
        }
    }

    func deliver(_ claimed: (Job, token: String)) async {
        let (job, token) = claimed
        let outcome: (String, String)
        do {
            guard let destination = try await network.destination(site: job.site) else {
                throw RadGridError(code: "dimse.noDestination", message: "site \(job.site) has no PACS registered")
            }
            let document = try await document(for: job)
            var configuration = StorageSCU.Configuration()
            configuration.callingAETitle = settings.callingAETitle
            let statuses = try await StorageSCU(configuration: configuration)
                .store([document], to: StorageSCU.Peer(aeTitle: destination.aeTitle, host: destination.host, port: destination.port))
            guard let status = statuses.first, DIMSEStatus.isSuccess(status) else {
                throw RadGridError(code: "dimse.storeRefused", message: "the PACS answered status \(statuses.first.map { String($0, radix: 16) } ?? "none")")
            }
            outcome = ("sent", "")
            _ = try? await store.audit(job.study).append(actor: AuditActor(.system, settings.name), action: "result.sent", study: job.study.rawValue,
                                                     details: "kind=\(job.kind.rawValue);pacs=\(destination.aeTitle);attempt=\(job.attempt)")
            Counter(label: "radgrid_dimse_results_total", dimensions: [("kind", job.kind.rawValue), ("outcome", "sent")]).increment()
        } catch {
            let code = (error as? any CodedError)?.code ?? "dimse.sendFailed"
            let permanent = code == "dimse.noDestination" || code == "dimse.nothingToSend"
            let dead = permanent || job.attempt >= settings.maxAttempts
            outcome = (dead ? "dead" : "retry", code)
            logger.warning("result not delivered", metadata: ["kind": "\(job.kind.rawValue)", "site": "\(job.site)", "attempt": "\(job.attempt)",
                                                               "error": "\(error)", "next": "\(dead ? "dead letter" : "retry")"])
            if dead {
                _ = try? await store.audit(job.study).append(actor: AuditActor(.system, settings.name), action: "result.deadLettered", study: job.study.rawValue,
                                                         details: "kind=\(job.kind.rawValue);attempts=\(job.attempt);error=\(code)")
            }
            Counter(label: "radgrid_dimse_results_total", dimensions: [("kind", job.kind.rawValue), ("outcome", dead ? "dead" : "retry")]).increment()
        }
        let backoff = min(settings.maxBackoff, settings.backoff * (1 << min(job.attempt - 1, 16)))
        let now = WallClock.nowMilliseconds()
        _ = try? await client.evalScript(Self.settleScript, keys: [RedisArgument(keys.dicomOutboxDue), RedisArgument(keys.dicomOutboxDead), RedisArgument(job.key)],
                                         arguments: [RedisArgument(now), RedisArgument(token), RedisArgument(outcome.0),
                                                     RedisArgument(now + Int64(backoff.components.seconds * 1000)), RedisArgument(outcome.1)])
    }

    func pruneDead() async throws {
        let cutoff = WallClock.nowMilliseconds() - Int64(settings.deadRetention.components.seconds * 1000)
        let old = (try await client.send("ZRANGEBYSCORE", RedisArgument(keys.dicomOutboxDead), "-inf", RedisArgument(cutoff), "LIMIT", "0", "500").array ?? []).compactMap(\.string)
        guard !old.isEmpty else { return }
        _ = try await client.pipeline([RedisCommand(["DEL"] + old.map { RedisArgument($0) }),
                                       RedisCommand(["ZREM", RedisArgument(keys.dicomOutboxDead)] + old.map { RedisArgument($0) })])
    }

    /// The Part 10 file a job sends.
    func document(for job: Job) async throws -> [UInt8] {
        switch job.kind {
        case .report:
            guard let report = try await store.report(job.study), report.status != .draft else {
                throw RadGridError(code: "dimse.nothingToSend", message: "the study has no signed report")
            }
            // The study as the site knows it (its own UID, when the grid keeps a site copy).
            let record = try await store.record(job.study)
            return try ReportDocument.basicTextSR(report, studyInstanceUID: record?.studyInstanceUID.rawValue)
        case .screening:
            guard let record = try await store.record(job.study), let screening = record.screening else {
                throw RadGridError(code: "dimse.nothingToSend", message: "the study has no screening result")
            }
            return try ScreeningDocument.basicTextSR(screening, study: record.studyInstanceUID, version: job.version, subject: try await subject(of: job.study))
        }
    }

    /// Patient and study attributes copied from one stored instance, so the PACS files the
    /// result with its study.
    func subject(of study: StudyUID) async throws -> DataSet {
        for sop in try await store.instanceUIDs(study).prefix(3) {
            guard let compressed = try await store.compressedInstance(study: study, sop: sop) else { continue }
            let bytes = try Zstd.decompress(compressed)
            if let file = try? DICOMFile.readHeader(bytes) { return file.dataSet }
        }
        throw RadGridError(code: "dimse.nothingToSend", message: "no stored instance of the study is left to copy the patient from")
    }

    // MARK: Operators

    public struct OutboxEntry: Sendable {
        public var job: String
        public var fields: [String: String]
    }

    /// Pending and dead jobs, for `radgridctl dimse outbox`.
    public func outbox() async throws -> (pending: [OutboxEntry], dead: [OutboxEntry]) {
        func entries(_ set: String) async throws -> [OutboxEntry] {
            let jobs = (try await client.send("ZRANGE", RedisArgument(set), "0", "999").array ?? []).compactMap(\.string)
            var out: [OutboxEntry] = []
            for job in jobs {
                let map = try await client.send("HGETALL", RedisArgument(job)).fieldMap ?? [:]
                out.append(OutboxEntry(job: String(job.dropFirst(keys.dicomOutboxJobPrefix.count)), fields: map.compactMapValues(\.string)))
            }
            return out
        }
        return (try await entries(keys.dicomOutboxDue), try await entries(keys.dicomOutboxDead))
    }

    /// Requeues dead jobs (all, or those whose name starts with `matching`); returns how many.
    public func retryDead(matching: String? = nil) async throws -> Int {
        let jobs = (try await client.send("ZRANGE", RedisArgument(keys.dicomOutboxDead), "0", "-1").array ?? []).compactMap(\.string)
        var count = 0
        for job in jobs where matching.map({ job.dropFirst(keys.dicomOutboxJobPrefix.count).hasPrefix($0) }) ?? true {
            let reply = try await client.evalScript(Self.requeueScript, keys: [RedisArgument(keys.dicomOutboxDue), RedisArgument(keys.dicomOutboxDead), RedisArgument(job)],
                                                    arguments: [RedisArgument(WallClock.nowMilliseconds())])
            count += Int(reply.int ?? 0)
        }
        return count
    }
}
