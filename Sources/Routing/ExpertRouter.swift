import Audit
import Foundation
import GridContract
import Logging
import Metrics
import RadGridCore
import RedisClient

/// Outcome of one routing decision.
public enum RouteOutcome: Sendable, Hashable {
    /// Offered to `expert`, who must accept within the accept timeout.
    case assigned(expert: String)
    /// No eligible expert now; the case waits by priority and is retried when capacity frees.
    case waiting
    /// `submitCase` saw the id before; the case is in `state`.
    case duplicate(state: String)
    /// The case is not waiting (already assigned, completed, cancelled).
    case skipped(state: String)

    public var expert: String? {
        if case .assigned(let expert) = self { return expert }
        return nil
    }
}

/// Why an expert declines; codes only, so no free text (and no PHI) reaches the audit trail.
public enum DeclineReason: String, Sendable, CaseIterable, Codable {
    case conflict, outsideSpecialty = "outside-specialty", workload, notCredentialed = "not-credentialed", technical, personal, other
}

/// Expert actions on a case.
public enum CaseAction: String, Sendable {
    case accept, decline, release, complete, cancel
}

/// A case as stored, for `radgridctl case show` and tests.
public struct CaseInfo: Sendable, Codable, Hashable {
    public var id: String
    public var specialty: String
    public var site: String
    public var region: String?
    public var priority: String
    public var effectivePriority: String
    public var weight: Int
    public var state: String
    public var expert: String?
    public var level: Int
    public var submitted: Int64
    public var deadline: Int64
    public var escalated: Bool
    public var offers: Int
    public var declines: Int
    public var excluded: [String]
    public var acceptBy: Int64?
    public var report: String?
    public var kind: CaseKind = .read
    /// Times of the first offer, the acceptance and the completion (ms), when they happened.
    public var firstOfferedAt: Int64?
    public var acceptedAt: Int64?
    public var completedAt: Int64?
}

/// An expert with live state, for `radgridctl experts list|show`.
public struct ExpertState: Sendable, Codable, Hashable {
    public var expert: Expert
    public var load: Int
    public var openCases: Int
    public var presence: Presence
    public var heartbeatUntil: Int64
    public var availableUntil: Int64
}

/// One audit entry as read back from the stream.
public struct AuditEntry: Sendable, Hashable {
    public var id: String
    public var time: Int64
    public var actor: String
    public var action: String
    public var caseID: String
    public var details: [String: String]
}

/// Routing metrics (swift-metrics).
struct RoutingMetrics: Sendable {
    let assignments = Counter(label: "radgrid_routing_assignments_total")
    let waiting = Counter(label: "radgrid_routing_waiting_total")
    let declines = Counter(label: "radgrid_routing_declines_total")
    let escalations = Counter(label: "radgrid_routing_escalations_total")
    let timeouts = Counter(label: "radgrid_routing_accept_timeouts_total")
    let decision = Metrics.Timer(label: "radgrid_routing_decision_seconds")
}

/// The router's API over Redis: roster, case intake, decisions, expert actions, timers.
/// `Sendable`; many routers (processes) may share one Redis.
public final class ExpertRouter: Sendable {
    public let redis: RedisClient
    public let keys: RoutingKeys
    public let prefix: KeyPrefix
    public let config: RoutingConfig
    /// Who the audit trail names for actions of this instance (e.g. `router:host-1`, `cli`).
    public let actor: String
    let clock: @Sendable () -> Int64
    let metrics = RoutingMetrics()
    let logger: Logger

    public init(redis: RedisClient, prefix: KeyPrefix = .default, config: RoutingConfig = .standard, actor: String = "router",
                logger: Logger = Logger(label: "radgrid.routing"), clock: @escaping @Sendable () -> Int64 = { WallClock.nowMilliseconds() }) {
        self.redis = redis
        self.keys = RoutingKeys(prefix: prefix)
        self.prefix = prefix
        self.config = config
        self.actor = actor
        self.clock = clock
        self.logger = logger
    }

    public var now: Int64 { clock() }

    // MARK: - Script plumbing

    func baseArguments(now: Int64, actor: String? = nil) -> [RedisArgument] {
        [
            RedisArgument(now), RedisArgument(actor ?? self.actor), RedisArgument(config.auditMaxEntries),
            RedisArgument(Int64(config.acceptTimeoutSeconds) * 1000), RedisArgument(config.statCapacityMargin),
            RedisArgument(config.conflictOfInterest ? 1 : 0), RedisArgument(Int64(config.recentHalfLifeMinutes) * 60_000),
            RedisArgument(config.maxCandidatesScanned), RedisArgument(config.widenAtFractions[0]), RedisArgument(config.widenAtFractions[1]),
            RedisArgument(Int64(config.ageRoutineAfterMinutes) * 60_000), RedisArgument(Int64(config.ageUrgentAfterMinutes) * 60_000),
            RedisArgument(Int.random(in: 0..<1_000_000_000)),
            RedisArgument(Int64(config.closedCaseRetentionDays) * 86_400_000),
            RedisArgument(config.balanceBy.rawValue), RedisArgument(config.maxOpenCases),
        ]
    }

    func command(_ script: RedisScript, caseID: String?, pools: [String], now: Int64, actor: String? = nil, arguments: [RedisArgument]) -> RedisCommand {
        let keyList = keys.statics + [RedisArgument(caseID.map(keys.caseKey) ?? keys.none)] + pools.map { RedisArgument(keys.pool($0)) }
        return .script(script, keys: keyList, arguments: baseArguments(now: now, actor: actor) + arguments)
    }

    static func strings(_ value: RedisValue) -> [String] {
        (value.array ?? []).map { $0.string ?? "" }
    }

    /// Pools a case at `level` is routed to: the widened specialty at its site and region.
    public static func poolNames(specialty: Specialty, site: String, region: String?, level: Int) -> [String] {
        let spec = specialty.widened(to: level)
        var names = [RoutingKeys.poolName(spec, site)]
        if let region, !region.isEmpty { names.append(RoutingKeys.poolName(spec, "region:" + region)) }
        return names
    }

    func assignCommand(mode: String, caseID: String, specialty: Specialty, site: String, region: String?, level: Int,
                       priority: Int, weight: Int, deadline: Int64, now: Int64, actor: String? = nil,
                       kind: CaseKind = .read, excluded: [String] = [], avoidHomeSite: String? = nil) -> RedisCommand {
        let pools = Self.poolNames(specialty: specialty, site: site, region: region, level: level)
        let arguments: [RedisArgument] = [
            RedisArgument(caseID), RedisArgument(mode), RedisArgument(specialty.description), RedisArgument(site),
            RedisArgument(region ?? ""), RedisArgument(level), RedisArgument(priority), RedisArgument(weight),
            RedisArgument(deadline), RedisArgument(specialty.maxLevel), RedisArgument(kind.rawValue),
            RedisArgument(excluded.joined(separator: " ")), RedisArgument(avoidHomeSite ?? ""), RedisArgument(pools.count),
        ] + pools.map { RedisArgument($0) }
        return command(RoutingScripts.assign, caseID: caseID, pools: pools, now: now, actor: actor, arguments: arguments)
    }

    /// Interprets an assign reply; re-scores the chosen expert's other pools.
    func finishAssign(_ reply: RedisValue, caseID: String) async throws -> (RouteOutcome, String) {
        try reply.throwingServerError()
        let parts = Self.strings(reply)
        guard parts.count >= 3 else { throw RoutingError("routing.reply", "unexpected reply from the assign script") }
        switch parts[0] {
        case "assigned":
            metrics.assignments.increment()
            try await reindex(expert: parts[1], pools: parts[2])
            return (.assigned(expert: parts[1]), parts[0])
        case "waiting":
            metrics.waiting.increment()
            return (.waiting, parts[0])
        case "duplicate":
            return (.duplicate(state: parts[2]), parts[0])
        default:
            return (.skipped(state: parts[2]), parts[0])
        }
    }

    /// Brings an expert's scores up to date in all their pools after a load change.
    func reindex(expert: String, pools: String) async throws {
        let names = pools.split(separator: " ").map(String.init)
        guard !names.isEmpty else { return }
        try await redis.send(command(RoutingScripts.reindex, caseID: nil, pools: names, now: now, arguments: [RedisArgument(expert)]))
    }

    // MARK: - Cases

    /// Registers a case and routes it at once (one script, one round trip). Idempotent by id.
    @discardableResult
    public func submitCase(_ request: CaseRequest, actor: String? = nil) async throws -> RouteOutcome {
        try await submitCaseTimed(request, actor: actor).outcome
    }

    /// `submitCase`, also returning the decision's round trip (the assign script) in
    /// nanoseconds, without the follow-up re-scoring of the chosen expert's other pools.
    public func submitCaseTimed(_ request: CaseRequest, actor: String? = nil) async throws -> (outcome: RouteOutcome, decisionNanoseconds: UInt64) {
        try request.validate()
        let now = self.now
        let deadline = request.deadline ?? now + config.slaMilliseconds(request.priority)
        let started = WallClock.monotonicNanoseconds()
        let reply = try await redis.sendDurable(assignCommand(mode: "submit", caseID: request.id, specialty: request.specialty, site: request.site,
                                                       region: request.region, level: 0, priority: request.priority.rank,
                                                       weight: request.weight, deadline: deadline, now: now, actor: actor,
                                                       kind: request.kind, excluded: request.excludedExperts, avoidHomeSite: request.avoidHomeSite))
        let elapsed = WallClock.monotonicNanoseconds() - started
        metrics.decision.recordNanoseconds(Int64(elapsed))
        return (try await finishAssign(reply, caseID: request.id).0, elapsed)
    }

    /// Tries to route a waiting case again (after a decline, timeout, widening or freed capacity).
    @discardableResult
    public func route(caseID: String) async throws -> RouteOutcome {
        for _ in 0..<3 {
            guard let info = try await caseInfo(caseID) else { throw RoutingError.notFound("case \(caseID) does not exist") }
            guard info.state == "waiting" else { return .skipped(state: info.state) }
            let reply = try await redis.sendDurable(assignCommand(mode: "route", caseID: caseID, specialty: try Specialty(info.specialty), site: info.site,
                                                           region: info.region, level: info.level, priority: Priority(name: info.priority)?.rank ?? Priority.routine.rank,
                                                           weight: info.weight, deadline: info.deadline, now: now))
            let (outcome, raw) = try await finishAssign(reply, caseID: caseID)
            if raw != "stale" { return outcome }
        }
        return .waiting
    }

    /// Publishes a case on the intake stream (the coordinator's contract); a router daemon
    /// routes it. Returns the stream entry id.
    @discardableResult
    public func enqueueCase(_ request: CaseRequest) async throws -> String {
        try request.validate()
        var fields: [RedisArgument] = ["case", RedisArgument(request.id), "spec", RedisArgument(request.specialty.description),
                                       "site", RedisArgument(request.site), "priority", RedisArgument(request.priority.description),
                                       "weight", RedisArgument(request.weight)]
        if let region = request.region { fields += ["region", RedisArgument(region)] }
        if let deadline = request.deadline { fields += ["deadline", RedisArgument(deadline)] }
        // Capped: entries are acknowledged by the routers' group and not needed after.
        let reply = try await redis.send(["XADD", RedisArgument(keys.intake), "MAXLEN", "~", "100000", "*"] + fields)
        return reply.string ?? ""
    }

    /// Parses one intake entry: either `spec` + `weight`; or `descriptors` (a JSON
    /// `StudyDescriptors`) + `series`; or `modality` [+ `body_part`] + `series`
    /// (+ `findings`, comma-separated). The last two derive specialty and weight with
    /// `config.specialtyRules`.
    public func request(fromIntake fields: [String: String]) throws(RoutingError) -> CaseRequest {
        try Self.request(fromIntake: fields, config: config)
    }

    /// `request(fromIntake:)` under `config`, without a router.
    public static func request(fromIntake fields: [String: String], config: RoutingConfig) throws(RoutingError) -> CaseRequest {
        guard let id = fields["case"], let site = fields["site"] else { throw .invalid("intake entry needs case and site") }
        guard let priority = Priority(name: fields["priority"] ?? "routine") else { throw .invalid("intake priority must be stat, urgent, routine or bulk") }
        let region = fields["region"].flatMap { $0.isEmpty ? nil : $0 }
        let series = Int(fields["series"] ?? "1") ?? 1
        var request: CaseRequest
        if let spec = fields["spec"] {
            guard let weight = Int(fields["weight"] ?? "") else { throw .invalid("intake weight must be an integer") }
            request = CaseRequest(id: id, specialty: try Specialty(spec), site: site, region: region, priority: priority, weight: weight)
        } else if let json = fields["descriptors"] {
            let descriptors: StudyDescriptors
            do {
                descriptors = try JSONDecoder().decode(StudyDescriptors.self, from: Data(json.utf8))
            } catch {
                throw .invalid("intake descriptors must be a StudyDescriptors JSON object")
            }
            request = try CaseRequest.derive(id: id, descriptors: descriptors, seriesCount: series, site: site, region: region,
                                             priority: priority, config: config).request
        } else {
            guard let modality = fields["modality"] else {
                throw .invalid("intake entry needs spec+weight, descriptors, or modality[+body_part]")
            }
            let findings = (fields["findings"] ?? "").split(separator: ",").map(String.init)
            request = try CaseRequest.derive(id: id, modality: modality, bodyPart: fields["body_part"] ?? "", seriesCount: series,
                                             findings: findings, site: site, region: region, priority: priority, config: config)
        }
        request.deadline = fields["deadline"].flatMap { Int64($0) }
        try request.validate()
        return request
    }

    func perform(_ action: CaseAction, caseID: String, expert: String, detail: String) async throws {
        let reply = try await redis.send(command(RoutingScripts.action, caseID: caseID, pools: [], now: now, actor: expert.isEmpty ? nil : "expert:" + expert,
                                                 arguments: [RedisArgument(action.rawValue), RedisArgument(caseID), RedisArgument(expert), RedisArgument(detail)]))
        let parts = Self.strings(reply)
        if parts.first == "err" {
            let code = parts.count > 1 ? parts[1] : "unknown"
            let state = parts.count > 2 ? parts[2] : ""
            switch code {
            case "notFound": throw RoutingError.notFound("case \(caseID) does not exist")
            case "notHolder": throw RoutingError("routing.notHolder", "case \(caseID) is not held by expert \(expert) (state \(state))")
            default: throw RoutingError("routing.state", "cannot \(action.rawValue) case \(caseID) in state \(state)")
            }
        }
        if parts.count > 2, !parts[1].isEmpty { try await reindex(expert: parts[1], pools: parts[2]) }
    }

    public func accept(caseID: String, expert: String) async throws {
        try await perform(.accept, caseID: caseID, expert: expert, detail: "")
    }

    /// Gives the case back with a reason; it is routed again to someone else at once.
    @discardableResult
    public func decline(caseID: String, expert: String, reason: DeclineReason) async throws -> RouteOutcome {
        try await perform(.decline, caseID: caseID, expert: expert, detail: reason.rawValue)
        metrics.declines.increment()
        return try await route(caseID: caseID)
    }

    /// Hands back an accepted case (e.g. at the end of a shift); routed again at once.
    @discardableResult
    public func release(caseID: String, expert: String, reason: DeclineReason = .other) async throws -> RouteOutcome {
        try await perform(.release, caseID: caseID, expert: expert, detail: reason.rawValue)
        return try await route(caseID: caseID)
    }

    /// Completes an accepted case with a report reference (an opaque id, no text).
    public func complete(caseID: String, expert: String, reportReference: String) async throws {
        guard !reportReference.isEmpty, reportReference.count <= 64,
              reportReference.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:/".contains($0)) }) else {
            throw RoutingError.invalid("report reference: 1-64 letters, digits, - _ . : /")
        }
        try await perform(.complete, caseID: caseID, expert: expert, detail: reportReference)
    }

    /// Withdraws a case (coordinator); frees its holder's load.
    public func cancel(caseID: String, reason: String = "withdrawn") async throws {
        try await perform(.cancel, caseID: caseID, expert: "", detail: reason.filter { $0.isLetter || $0 == "-" })
    }

    public func caseInfo(_ caseID: String) async throws -> CaseInfo? {
        Self.caseInfo(caseID, try await redis.send("HGETALL", RedisArgument(keys.caseKey(caseID))))
    }

    /// Several cases in one pipeline, in the order asked (nil where a case does not exist).
    public func caseInfos(_ caseIDs: [String]) async throws -> [CaseInfo?] {
        guard !caseIDs.isEmpty else { return [] }
        let replies = try await redis.pipeline(caseIDs.map { RedisCommand("HGETALL", RedisArgument(keys.caseKey($0))) })
        return zip(caseIDs, replies).map { Self.caseInfo($0, $1) }
    }

    /// The cases offered to or accepted by `expert` (their worklist), from the holder index
    /// the scripts keep (`route:{rt}:held`, members `expert|case`).
    public func heldCases(expert: String) async throws -> [String] {
        let reply = try await redis.send("ZRANGE", RedisArgument(keys.held), RedisArgument("[" + expert + "|"), RedisArgument("[" + expert + "|\u{FF}"), "BYLEX")
        let prefixLength = expert.utf8.count + 1
        return Self.strings(reply).compactMap { member in
            let bytes = member.utf8
            guard bytes.count > prefixLength else { return nil }
            return String(decoding: bytes.dropFirst(prefixLength), as: UTF8.self)
        }
    }

    static func caseInfo(_ caseID: String, _ reply: RedisValue) -> CaseInfo? {
        guard let map = reply.fieldMap, !map.isEmpty else { return nil }
        func s(_ key: String) -> String? { map[key]?.string }
        func i(_ key: String) -> Int64 { map[key]?.int ?? 0 }
        let prio = Int(i("prio")), eprio = Int(i("eprio"))
        let region = s("region").flatMap { $0.isEmpty ? nil : $0 }
        let expert = s("expert").flatMap { $0.isEmpty ? nil : $0 }
        return CaseInfo(id: caseID, specialty: s("spec") ?? "", site: s("site") ?? "", region: region,
                        priority: Priority(rank: prio)?.description ?? "routine",
                        effectivePriority: Priority(rank: eprio)?.description ?? "routine",
                        weight: Int(i("weight")), state: s("state") ?? "", expert: expert, level: Int(i("level")),
                        submitted: i("submitted"), deadline: i("deadline"), escalated: i("escalated") != 0,
                        offers: Int(i("offers")), declines: Int(i("declines")),
                        excluded: (s("excl") ?? "").split(separator: " ").map(String.init),
                        acceptBy: map["accept_by"]?.int, report: s("report"),
                        kind: s("kind").flatMap(CaseKind.init(rawValue:)) ?? .read,
                        firstOfferedAt: map["first_offered_at"]?.int, acceptedAt: map["accepted_at"]?.int, completedAt: map["completed_at"]?.int)
    }

    // MARK: - Timers and waiting cases

    /// Earliest due time among case timers and expert availability checks.
    public func nextDueTime() async throws -> Int64? {
        let replies = try await redis.pipeline([
            RedisCommand("ZRANGE", RedisArgument(keys.timers), "0", "0", "WITHSCORES"),
            RedisCommand("ZRANGE", RedisArgument(keys.next), "0", "0", "WITHSCORES"),
        ])
        let times = replies.compactMap { $0.array.flatMap { $0.count == 2 ? $0[1].double.map { Int64($0) } : nil } }
        return times.min()
    }

    /// Runs due case timers (accept timeouts, SLA deadlines, widening, ageing) and routes
    /// the cases they put back on the wait queue. Returns the number of timers handled.
    @discardableResult
    public func processDueTimers(limit: Int = 256) async throws -> Int {
        let now = self.now
        let due = try await redis.send("ZRANGE", RedisArgument(keys.timers), "-inf", RedisArgument(now), "BYSCORE", "LIMIT", "0", RedisArgument(limit))
        let ids = Self.strings(due)
        guard !ids.isEmpty else { return 0 }
        let replies = try await redis.pipeline(ids.map { id in
            command(RoutingScripts.timer, caseID: id, pools: [], now: now, arguments: [RedisArgument(id)])
        })
        var reroute: [String] = []
        for (id, reply) in zip(ids, replies) {
            let parts = Self.strings(try reply.throwingServerError())
            guard let outcome = parts.first else { continue }
            switch outcome {
            case "requeued":
                metrics.timeouts.increment()
                if parts.count > 2 { try await reindex(expert: parts[1], pools: parts[2]) }
                reroute.append(id)
            case "reroute": reroute.append(id)
            case "escalated", "breach": metrics.escalations.increment()
            default: break
            }
        }
        for id in reroute { _ = try await route(caseID: id) }
        return ids.count
    }

    /// Offers waiting cases in priority order (STAT first, then by submission) to experts
    /// with room. Cases whose pool just proved full are skipped for the rest of the pass.
    /// Returns the number of cases assigned.
    @discardableResult
    public func drainWaiting(limit: Int = 1000) async throws -> Int {
        let ids = Self.strings(try await redis.send("ZRANGE", RedisArgument(keys.wait), "0", RedisArgument(limit - 1)))
        guard !ids.isEmpty else { return 0 }
        let fields = try await redis.pipeline(ids.map { id in
            RedisCommand("HMGET", RedisArgument(keys.caseKey(id)), "spec", "site", "region", "level", "eprio", "weight", "deadline", "excl", "state")
        })
        var full = Set<String>()
        var assigned = 0
        var batch: [(command: RedisCommand, id: String, signature: String, plain: Bool)] = []
        func flush() async throws {
            guard !batch.isEmpty else { return }
            let started = WallClock.monotonicNanoseconds()
            let replies = try await redis.pipeline(batch.map(\.command), durable: true)
            metrics.decision.recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started) / Int64(batch.count))
            for (entry, reply) in zip(batch, replies) {
                let (outcome, raw) = try await finishAssign(reply, caseID: entry.id)
                if outcome.expert != nil { assigned += 1 }
                if raw == "waiting", entry.plain { full.insert(entry.signature) }
            }
            batch.removeAll()
        }
        let now = self.now
        for (id, value) in zip(ids, fields) {
            let f = Self.strings(value)
            guard f.count == 9, f[8] == "waiting", let specialty = try? Specialty(f[0]),
                  let level = Int(f[3]), let eprio = Int(f[4]), let weight = Int(f[5]), let deadline = Int64(f[6]) else { continue }
            let region = f[2].isEmpty ? nil : f[2]
            let signature = "\(f[0])|\(f[1])|\(f[2])|\(level)|\(eprio == 0)|\(weight)"
            let plain = f[7].trimmingCharacters(in: .whitespaces).isEmpty
            if full.contains(signature) && plain { continue }
            batch.append((assignCommand(mode: "route", caseID: id, specialty: specialty, site: f[1], region: region, level: level,
                                        priority: eprio, weight: weight, deadline: deadline, now: now), id, signature, plain))
            if batch.count >= 32 { try await flush() }
        }
        try await flush()
        return assigned
    }

    /// Number of waiting cases per effective priority.
    public func waitingCounts() async throws -> [Priority: Int] {
        var result: [Priority: Int] = [:]
        let commands: [RedisCommand] = Priority.allCases.map { priority -> RedisCommand in
            let low = Int64(priority.rank) * 10_000_000_000_000
            let high = "(" + String(low + 10_000_000_000_000)
            return RedisCommand("ZCOUNT", RedisArgument(keys.wait), RedisArgument(low), RedisArgument(high))
        }
        let replies = try await redis.pipeline(commands)
        for (priority, reply) in zip(Priority.allCases, replies) { result[priority] = Int(reply.int ?? 0) }
        return result
    }

    // MARK: - Audit

    /// Reads audit entries (oldest first) after `after` (exclusive).
    public func auditEntries(after: String = "-", count: Int = 1000) async throws -> [AuditEntry] {
        let start = after == "-" ? "-" : "(" + after
        let reply = try await redis.send("XRANGE", RedisArgument(keys.audit), RedisArgument(start), "+", "COUNT", RedisArgument(count))
        return (reply.array ?? []).compactMap { entry in
            guard let pair = entry.array, pair.count == 2, let id = pair[0].string, let map = pair[1].fieldMap else { return nil }
            var details: [String: String] = [:]
            for item in (map["details"]?.string ?? "").split(separator: ";") {
                let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 2 { details[kv[0]] = kv[1] }
            }
            return AuditEntry(id: id, time: map["t"]?.int ?? 0, actor: map["actor"]?.string ?? "", action: map["action"]?.string ?? "",
                              caseID: map["case"]?.string ?? "", details: details)
        }
    }

    /// Every audit entry, paging through the stream.
    public func allAuditEntries() async throws -> [AuditEntry] {
        var result: [AuditEntry] = []
        var after = "-"
        while true {
            let page = try await auditEntries(after: after, count: 5000)
            result += page
            guard let last = page.last, page.count == 5000 else { return result }
            after = last.id
        }
    }
}

extension ExpertRouter {
    /// The chain (hash tag `rt`) the router's audit stream is copied into, hash-linked.
    public static let auditChain = "rt"

    /// Chains the router's audit stream (`route:{rt}:audit`) into the tamper-evident
    /// `AuditTrail` off the decision path: a SHA-256 in Lua would cost about as much as a
    /// whole assignment. Details keep the router's own time as `t=`.
    public func auditChainer(logger: Logger) -> AuditChainer {
        AuditChainer(trail: AuditTrail(client: redis, prefix: prefix, chain: Self.auditChain), sourceStream: keys.audit, logger: logger) { fields in
            let time = fields["t"]?.string ?? ""
            let details = fields["details"]?.string ?? ""
            return (actor: fields["actor"]?.string ?? "router", action: "route." + (fields["action"]?.string ?? "unknown"),
                    study: fields["case"]?.string ?? "", details: details.isEmpty ? "t=\(time)" : "t=\(time);\(details)")
        }
    }
}
