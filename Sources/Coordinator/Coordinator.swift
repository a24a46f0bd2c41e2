#if canImport(Glibc)
import Glibc
#endif
import Audit
import Crypto
import Logging
import Metrics
import RadGridCore
import RedisClient
import Routing
import ServiceLifecycle
import StudyStore
import TaskQueue
import WorkerDaemon

/// Settings of the coordinator.
public struct CoordinatorSettings: Sendable {
    public var prefix: KeyPrefix = .default
    public var queueName = StudyTasks.defaultQueueName
    /// A study with no new instance for this long is committed by the coordinator.
    public var stableAge: Duration = .seconds(10)
    /// Delete a study's compressed instances once it is reported (retention).
    public var deleteBlobsWhenReported = true
    public var consumerName = "coordinator-\(getpid())"
    /// Pending stream entries idle this long (a dead coordinator's) are claimed.
    public var claimIdle: Duration = .seconds(30)
    public var routing: RoutingConfig = .standard
    public init() {}
}

/// The coordinator: turns committed studies into tasks and screened studies into cases, and
/// mirrors the router's case events into the study state. Every step is idempotent (state
/// checks + the queue's idempotency keys), so entries are processed at least once and a
/// restart or a second coordinator does no harm.
///
/// Streams read with consumer group `coordinators`: `rg:studies:committed` (the store's
/// commits and late instances) and `rg:{q:tasks}:screened` (appended by the study task's
/// completion script). The router's audit stream is tailed with a cursor kept in
/// `rg:coord:routeCursor`; `rg:coord:cases` maps case id → study UID.
public final class Coordinator: Service, Sendable {
    public static let consumerGroup = "coordinators"

    public let client: RedisClient
    public let settings: CoordinatorSettings
    public let store: StudyStore
    public let queue: TaskQueue
    public let router: ExpertRouter
    let logger: Logger
    let actor: AuditActor
    let metricEvents = Counter(label: "radgrid_coordinator_events_total")

    public init(client: RedisClient, settings: CoordinatorSettings, logger: Logger = Logger(label: "radgrid.coordinator")) {
        self.client = client
        self.settings = settings
        self.logger = logger
        store = StudyStore(client: client, prefix: settings.prefix)
        queue = TaskQueue(client: client, name: settings.queueName, configuration: TaskQueueConfiguration(prefix: settings.prefix), logger: logger)
        router = ExpertRouter(redis: client, prefix: settings.prefix, config: settings.routing, actor: settings.consumerName, logger: logger)
        actor = AuditActor(.coordinator, settings.consumerName)
    }

    public var casesKey: String { settings.prefix.value + "coord:cases" }
    public var cursorKey: String { settings.prefix.value + "coord:routeCursor" }
    public var siteRegionsKey: String { settings.prefix.value + "sites:region" }
    var screenedStream: String { StudyTasks.screenedStream(queue) }

    /// The router's case id for a study: opaque (a digest, not the UID) and stable, so a
    /// repeated hand-off is a duplicate submit.
    public static func caseID(study: String) -> String {
        let digest = SHA256.hash(data: Array("radgrid-case:\(study)".utf8))
        return "c" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    public func run() async throws {
        try await ensureGroup(store.committedStreamKey)
        try await ensureGroup(screenedStream)
        logger.info("coordinator started", metadata: ["consumer": "\(settings.consumerName)", "stableAge": "\(settings.stableAge)"])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.intakeLoop() }
                group.addTask { await self.stableAgeLoop() }
                group.addTask { await self.routerFollowLoop() }
                group.addTask { await self.screenedSweepLoop() }
            }
        }
        logger.info("coordinator stopped")
    }

    func ensureGroup(_ stream: String) async throws {
        do {
            try await client.send("XGROUP", "CREATE", RedisArgument(stream), RedisArgument(Self.consumerGroup), "0", "MKSTREAM")
        } catch where error.isServerError("BUSYGROUP") {}
    }

    // MARK: Intake (committed + screened streams)

    func intakeLoop() async {
        let connection = client.dedicatedConnection(name: "radgrid-coordinator-intake")
        defer { connection.close() }
        var lastClaim = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            do {
                if ContinuousClock.now - lastClaim > settings.claimIdle {
                    lastClaim = .now
                    try await claimStale()
                }
                let reply = try await connection.send([
                    "XREADGROUP", "GROUP", RedisArgument(Self.consumerGroup), RedisArgument(settings.consumerName), "COUNT", "64",
                    "BLOCK", "1000", "STREAMS", RedisArgument(store.committedStreamKey), RedisArgument(screenedStream), ">", ">",
                ], blockingFor: .seconds(1))
                for stream in reply.array ?? [] {
                    guard let pair = stream.array, pair.count == 2, let name = pair[0].string else { continue }
                    await handle(stream: name, entries: pair[1].array ?? [])
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("intake read failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    func claimStale() async throws {
        for stream in [store.committedStreamKey, screenedStream] {
            let reply = try await client.send("XAUTOCLAIM", RedisArgument(stream), RedisArgument(Self.consumerGroup), RedisArgument(settings.consumerName),
                                              RedisArgument(settings.claimIdle.components.seconds * 1000), "0-0", "COUNT", "100")
            if let parts = reply.array, parts.count >= 2 { await handle(stream: stream, entries: parts[1].array ?? []) }
        }
    }

    func handle(stream: String, entries: [RedisValue]) async {
        for entry in entries {
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { continue }
            let fields = (parts[1].fieldMap ?? [:]).compactMapValues(\.string)
            do {
                if let study = fields["study"] {
                    if stream == screenedStream {
                        try await handOff(study: study)
                    } else if let sop = fields["late"] {
                        try await lateInstance(study: study, sop: sop)
                    } else {
                        try await fanOut(study: study)
                    }
                }
                metricEvents.increment()
                _ = try await client.send("XACK", RedisArgument(stream), RedisArgument(Self.consumerGroup), RedisArgument(id))
            } catch {
                // Left pending: claimed again after claimIdle.
                logger.warning("entry failed; will retry", metadata: ["stream": "\(stream)", "entry": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// received → queued, then one task per instance plus the fan-in group whose `then` is the
    /// study task. Re-running it (redelivery, crash between the steps) adds nothing.
    public func fanOut(study uid: String) async throws {
        guard let record = try await store.study(uid) else {
            logger.warning("committed study unknown", metadata: ["study": "\(uid)"])
            return
        }
        switch record.state {
        case .received:
            do {
                try await store.transition(study: uid, to: .queued, from: [.received], actor: actor, action: "study.queued",
                                           details: "instances=\(record.instances);priority=\(record.priority.rawValue)")
            } catch let error as StudyStoreError where error.code == "study.invalidTransition" {}
        case .queued: break // a previous attempt may have stopped before enqueueing
        default: return
        }
        let sops = try await store.instanceUIDs(uid)
        guard !sops.isEmpty else {
            try await store.transition(study: uid, to: .failed, actor: actor, action: "study.failed", details: "reason=noInstances", fields: ["reason": "noInstances"])
            return
        }
        let lane = StudyTasks.lane(for: record.priority)
        let members = sops.map { StudyTasks.instanceSpec(study: uid, sop: $0, lane: lane) }
        _ = try await queue.enqueueGroup(id: StudyTasks.groupID(study: uid), members: members, then: StudyTasks.studySpec(study: uid, sops: sops, lane: lane))
        logger.info("study fanned out", metadata: ["study": "\(uid)", "instances": "\(sops.count)", "lane": "\(lane)"])
    }

    /// A new instance of a study already committed: recorded (the store counts it and the
    /// audit chain names it) but not processed — the case is already on its way. Before the
    /// fan-out it is simply part of the study.
    func lateInstance(study uid: String, sop: String) async throws {
        guard let record = try await store.study(uid), record.state != .received else { return }
        try await store.audit(uid).append(actor: actor, action: "study.lateInstance", study: uid, details: "state=\(record.state.rawValue);late=\(record.lateInstances)")
    }

    // MARK: Stable-age commit

    func stableAgeLoop() async {
        let period = max(Duration.milliseconds(200), settings.stableAge / 4)
        while !Task.isCancelled {
            do {
                let cutoff = WallClock.nowMilliseconds() - settings.stableAge.components.seconds * 1000 - settings.stableAge.components.attoseconds / 1_000_000_000_000_000
                for uid in try await store.openStudies(lastInstanceBefore: cutoff) {
                    do {
                        try await store.commit(study: uid, actor: actor, reason: "stable-age")
                    } catch {
                        logger.warning("stable-age commit failed", metadata: ["study": "\(uid)", "error": "\(error)"])
                    }
                }
            } catch {
                logger.warning("stable-age scan failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: period)
        }
    }

    // MARK: Hand-off to the router

    /// screened → routing, then `submitCase` (idempotent by case id); an immediate offer
    /// moves the study to assigned.
    public func handOff(study uid: String) async throws {
        guard let record = try await store.study(uid) else { return }
        guard record.state == .screened || record.state == .routing else { return }
        let caseID = Self.caseID(study: uid)
        let region = try await client.send("HGET", RedisArgument(siteRegionsKey), RedisArgument(record.site)).string
        let request = try caseRequest(record, caseID: caseID, region: region)
        if record.state == .screened {
            _ = try await client.send("HSET", RedisArgument(casesKey), RedisArgument(caseID), RedisArgument(uid))
            do {
                try await store.transition(study: uid, to: .routing, from: [.screened], actor: actor, action: "study.routing",
                                           details: "case=\(caseID);spec=\(request.specialty);priority=\(request.priority)",
                                           fields: ["case": caseID, "specialty": request.specialty.description, "casePriority": request.priority.description])
            } catch let error as StudyStoreError where error.code == "study.invalidTransition" { return }
        }
        let outcome = try await router.submitCase(request)
        switch outcome {
        case .assigned(let expert):
            try await apply(study: uid, action: "offer", expert: expert)
        case .duplicate:
            if let info = try await router.caseInfo(caseID), let expert = info.expert, info.state == "offered" || info.state == "accepted" {
                try await apply(study: uid, action: "offer", expert: expert)
                if info.state == "accepted" { try await apply(study: uid, action: "accept", expert: expert) }
            }
        case .waiting, .skipped: break
        }
        logger.info("case submitted", metadata: ["study": "\(uid)", "case": "\(caseID)", "outcome": "\(outcome)", "priority": "\(request.priority)"])
    }

    /// Specialty from modality, body part and findings; priority from the screen's urgency
    /// (critical → stat, urgent → at least urgent) and the study's own priority.
    public func caseRequest(_ record: StudyRecord, caseID: String, region: String? = nil) throws -> CaseRequest {
        let findings = (record.attributes["findings"] ?? "").split(separator: ",").compactMap { Self.routingFinding(String($0)) }
        var priority: Priority = switch record.priority {
        case .stat: .stat
        case .urgent: .urgent
        case .routine, .bulk: .routine
        }
        switch record.attributes["urgency"] {
        case "critical": priority = .stat
        case "urgent": priority = min(priority, .urgent)
        default: break
        }
        let series = Int(record.attributes["series"] ?? "1") ?? 1
        return try CaseRequest.derive(id: caseID, modality: record.modality.isEmpty ? "OT" : record.modality, bodyPart: record.bodyPart,
                                      seriesCount: series, findings: findings, site: record.site, region: region.flatMap { $0.isEmpty ? nil : $0 },
                                      priority: priority, config: settings.routing)
    }

    /// Screener finding codes → the router's finding words.
    static func routingFinding(_ code: String) -> String? {
        switch code {
        case "ct.head.hyperdensity": "hemorrhage"
        case "ct.chest.nodule": "nodule"
        default: nil
        }
    }

    /// Safety net: a study left in `screened` (hand-off entry lost) is handed off again.
    func screenedSweepLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            do {
                let members = try await client.send("SMEMBERS", RedisArgument(store.stateKey(.screened))).array ?? []
                for uid in members.compactMap(\.string) {
                    guard let record = try await store.study(uid), record.state == .screened,
                          WallClock.nowMilliseconds() - record.updatedAtMilliseconds > 5_000 else { continue }
                    try await handOff(study: uid)
                }
            } catch {
                logger.warning("screened sweep failed", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Following the router

    /// Tails the router's audit stream and mirrors case events into the study state:
    /// offer → assigned, accept → accepted, complete → reported, decline/timeout/release → routing.
    func routerFollowLoop() async {
        let connection = client.dedicatedConnection(name: "radgrid-coordinator-router")
        defer { connection.close() }
        // The saved cursor must be read, not guessed: starting from 0-0 after a Redis hiccup
        // would replay every routing event.
        var cursor: String
        while true {
            do {
                cursor = try await client.send("GET", RedisArgument(cursorKey)).string ?? "0-0"
                break
            } catch {
                if Task.isCancelled { return }
                logger.warning("cannot read the router-follow cursor, retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        while !Task.isCancelled {
            do {
                let reply = try await connection.send(["XREAD", "COUNT", "256", "BLOCK", "1000", "STREAMS", RedisArgument(router.keys.audit), RedisArgument(cursor)],
                                                      blockingFor: .seconds(1))
                guard let stream = reply.array?.first?.array, stream.count == 2, let entries = stream[1].array, !entries.isEmpty else { continue }
                var events: [(id: String, caseID: String, action: String, expert: String)] = []
                for entry in entries {
                    guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { continue }
                    let f = (parts[1].fieldMap ?? [:]).compactMapValues(\.string)
                    let details = Self.details(f["details"] ?? "")
                    events.append((id, f["case"] ?? "", f["action"] ?? "", details["expert"] ?? ""))
                }
                let relevant = events.filter { !$0.caseID.isEmpty && ["offer", "accept", "complete", "decline", "release", "accept_timeout", "cancel"].contains($0.action) }
                if !relevant.isEmpty {
                    let ids = Array(Set(relevant.map(\.caseID)))
                    let studies = try await client.send(["HMGET", RedisArgument(casesKey)] + ids.map { RedisArgument($0) }).array ?? []
                    var map: [String: String] = [:]
                    for (id, value) in zip(ids, studies) { if let uid = value.string { map[id] = uid } }
                    for event in relevant {
                        guard let uid = map[event.caseID] else { continue }
                        try await apply(study: uid, action: event.action, expert: event.expert)
                    }
                }
                cursor = events.last?.id ?? cursor
                _ = try await client.send("SET", RedisArgument(cursorKey), RedisArgument(cursor))
            } catch {
                if Task.isCancelled { break }
                logger.warning("router follow failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    static func details(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }

    /// Applies one case event to the study; transitions that no longer apply are ignored.
    func apply(study uid: String, action: String, expert: String) async throws {
        let change: (StudyState, [StudyState], [String: String])? = switch action {
        case "offer": (.assigned, [.routing], ["expert": expert])
        case "accept": (.accepted, [.assigned], ["expert": expert])
        case "complete": (.reported, [.accepted], [:])
        case "decline", "release", "accept_timeout": (.routing, [.assigned, .accepted], ["expert": ""])
        case "cancel": (.failed, [.routing, .assigned, .accepted], ["reason": "caseCancelled"])
        default: nil
        }
        guard let (target, from, fields) = change else { return }
        do {
            try await store.transition(study: uid, to: target, from: from, actor: actor, action: "study.\(target.rawValue)",
                                       details: expert.isEmpty ? "case=\(action)" : "case=\(action);expert=\(expert)", fields: fields)
        } catch let error as StudyStoreError where error.code == "study.invalidTransition" {
            return
        }
        if target == .assigned {
            // Time from receipt to assignment, for the benchmark and dashboards.
            if let record = try await store.study(uid) {
                let seconds = Double(WallClock.nowMilliseconds() - record.createdAtMilliseconds) / 1000
                Timer(label: "radgrid_study_received_to_assigned_seconds", preferredDisplayUnit: .seconds).recordSeconds(seconds)
            }
        }
        if target == .reported && settings.deleteBlobsWhenReported {
            _ = try await store.deleteBlobs(study: uid, actor: actor)
        }
    }
}
