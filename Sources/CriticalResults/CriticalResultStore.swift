import Audit
import Foundation
import GridContract
import Metrics
import RadGridCore
import RedisClient

/// The module's scripts (`Lua/*.lua`, embedded at build time); each is one atomic transition
/// with its audit entry.
enum CriticalScripts {
    static let raise = RedisScript(CriticalResultsLua.raise)
    static let claim = RedisScript(CriticalResultsLua.claim)
    static let record = RedisScript(CriticalResultsLua.record)
    static let escalate = RedisScript(CriticalResultsLua.escalate)
    static let ack = RedisScript(CriticalResultsLua.ack)
    static let retry = RedisScript(CriticalResultsLua.retry)
}

/// Critical results in Redis: raising, delivery bookkeeping, escalation, acknowledgement, and
/// the webhook configuration. Every state change is one script (see `Lua/_critical.lua`) that
/// also appends to the audit chain `cr`, indexed by study, so `radgridctl audit study` shows it.
/// Times come from the caller (`now`), so tests drive escalation with their own clock.
public struct CriticalResultStore: Sendable {
    public let client: RedisClient
    public let keys: CriticalResultKeys
    public let policy: CriticalResultPolicy
    public let actor: AuditActor
    let acknowledgedCounter = Counter(label: "radgrid_critical_acknowledged_total")

    public init(client: RedisClient, prefix: KeyPrefix = .default, policy: CriticalResultPolicy = .standard,
                actor: AuditActor = AuditActor(.system, "critical-results")) {
        self.client = client
        keys = CriticalResultKeys(prefix: prefix)
        self.policy = policy
        self.actor = actor
    }

    /// The module's audit chain.
    public var auditTrail: AuditTrail { AuditTrail(client: client, prefix: keys.prefix, chain: CriticalResultKeys.auditChain) }

    // MARK: Script plumbing

    /// KEYS[1…8] of every script, in the order of `K` in `Lua/_critical.lua`.
    var staticKeys: [RedisArgument] {
        let trail = auditTrail
        return [keys.open, keys.deliveries, keys.timers, keys.dead, keys.acknowledged, trail.logKey, trail.headKey, keys.policy]
            .map { RedisArgument($0) }
    }

    /// ARGV[1…4] of every script.
    func baseArguments(now: Int64, actor: AuditActor? = nil) -> [RedisArgument] {
        [RedisArgument(now), RedisArgument((actor ?? self.actor).description), RedisArgument(keys.base),
         RedisArgument(auditTrail.studyKey(""))]
    }

    func studyResultKeys(_ study: StudyUID) -> [RedisArgument] {
        CriticalSource.allCases.map { RedisArgument(keys.result(study: study.rawValue, source: $0)) }
    }

    // MARK: Raising

    /// Raises a critical result; a second call for the same study and source changes nothing.
    @discardableResult
    public func raise(study: StudyUID, caseID: CaseID?, site: SiteID, source: CriticalSource, priority: Priority,
                      now: Int64, actor: AuditActor? = nil) async throws -> CriticalRaiseOutcome {
        let trail = auditTrail
        let arguments = baseArguments(now: now, actor: actor) + [
            RedisArgument(CriticalResult.id(study: study, source: source)), RedisArgument(study.rawValue),
            RedisArgument(caseID?.rawValue ?? ""), RedisArgument(site.rawValue), RedisArgument(source.rawValue),
            RedisArgument(priority.rawValue),
        ]
        let replies = try await client.pipeline([
            RedisCommand("SADD", RedisArgument(trail.chainsKey), RedisArgument(trail.chain)),
            .script(CriticalScripts.raise, keys: staticKeys + [RedisArgument(keys.result(study: study.rawValue, source: source))], arguments: arguments),
        ])
        let reply = try replies[1].throwingServerError().array ?? []
        guard reply.count == 2, let verdict = reply[0].string, let state = reply[1].string.flatMap(CriticalState.init(rawValue:)) else {
            throw CriticalResultError(.unexpectedReply, "raise answered \(reply.count) fields")
        }
        return verdict == "raised" ? .raised : .alreadyRaised(state)
    }

    // MARK: Delivering

    /// One delivery a notifier has leased.
    public struct DeliveryClaim: Sendable, Hashable {
        /// `<source>:<study>|<level>`
        public var entry: String
        public var level: Int
        /// 1 for the first attempt.
        public var attempt: Int
        /// The fencing token of the claim.
        public var token: String
        /// The result as claimed (its `deliveries` are not filled in).
        public var result: CriticalResult
    }

    /// Leases up to `limit` due deliveries for `policy.leaseMs`.
    public func claimDeliveries(now: Int64, limit: Int, token: String) async throws -> [DeliveryClaim] {
        let arguments = baseArguments(now: now) + [RedisArgument(policy.leaseMs), RedisArgument(limit), RedisArgument(token), RedisArgument(policy.maxAttempts)]
        let reply = try await client.evalScript(CriticalScripts.claim, keys: staticKeys, arguments: arguments)
        return try (reply.array ?? []).map { item in
            let f = (item.array ?? []).map { $0.string ?? "" }
            guard f.count == 11, let level = Int(f[1]), let attempt = Int(f[2]),
                  let result = CriticalResult.parse(["id": f[3], "study": f[4], "case": f[5], "site": f[6], "source": f[7],
                                                     "priority": f[8], "raised": f[9], "state": f[10]]) else {
                throw CriticalResultError(.unexpectedReply, "claim answered a delivery of \(f.count) fields")
            }
            return DeliveryClaim(entry: f[0], level: level, attempt: attempt, token: token, result: result)
        }
    }

    public enum DeliveryOutcome: Sendable, Equatable {
        case delivered
        /// An error code or HTTP status (no patient data, no secrets).
        case failed(String)
    }

    public enum RecordedDelivery: Sendable, Equatable {
        case delivered
        /// Failed; the next attempt is due then (ms).
        case retry(at: Int64)
        /// Failed for the last time: dead-lettered.
        case dead
        /// The lease was lost or the result was acknowledged meanwhile: nothing recorded.
        case stale
        /// The result no longer exists.
        case gone
    }

    /// Records what happened to a claimed delivery.
    @discardableResult
    public func record(_ claim: DeliveryClaim, outcome: DeliveryOutcome, now: Int64) async throws -> RecordedDelivery {
        let (verdict, error): (String, String) = switch outcome {
        case .delivered: ("ok", "")
        case .failed(let code): ("fail", String(code.prefix(200)))
        }
        let arguments = baseArguments(now: now) + [
            RedisArgument(claim.entry), RedisArgument(claim.token), RedisArgument(verdict), RedisArgument(error),
            RedisArgument(policy.initialBackoffMs), RedisArgument(policy.maxBackoffMs), RedisArgument(policy.maxAttempts),
        ]
        let reply = (try await client.evalScript(CriticalScripts.record, keys: staticKeys, arguments: arguments)).array ?? []
        switch reply.first?.string {
        case "delivered": return .delivered
        case "retry":
            guard reply.count == 2, let due = reply[1].int else { break }
            return .retry(at: due)
        case "dead": return .dead
        case "stale": return .stale
        case "gone": return .gone
        default: break
        }
        throw CriticalResultError(.unexpectedReply, "record answered \(reply.first?.string ?? "nothing")")
    }

    // MARK: Escalating

    /// Escalates up to `limit` results whose escalation is due under this store's policy (the
    /// notifiers' policy decides: raising needs none); returns each result's member and the
    /// level it reached.
    public func escalateDue(now: Int64, limit: Int = 100) async throws -> [(member: String, level: Int)] {
        let arguments = baseArguments(now: now) + [RedisArgument(limit)]
            + [Priority.stat, .urgent, .routine, .bulk].map { RedisArgument(policy.escalateAfter($0)) }
            + [RedisArgument(policy.adminsAfterMs), RedisArgument(policy.retentionMs)]
        let reply = try await client.evalScript(CriticalScripts.escalate, keys: staticKeys, arguments: arguments)
        return (reply.array ?? []).compactMap { item in
            guard let pair = item.array, pair.count == 2, let member = pair[0].string, let level = pair[1].int else { return nil }
            return (member, Int(level))
        }
    }

    // MARK: Acknowledging

    /// The site acknowledges its study's critical results. Throws `critical.notFound` when the
    /// study has none or they belong to another site (the same error: the caller must not learn
    /// which). Returns the study's results afterwards.
    public func acknowledge(study: StudyUID, site: SiteID, by: String, method: String, now: Int64) async throws -> [CriticalResult] {
        let acknowledgement = try CriticalAcknowledgementRequest(by: by, method: method)
        let arguments = baseArguments(now: now, actor: AuditActor(.site, site.rawValue)) + [
            RedisArgument(study.rawValue), RedisArgument(site.rawValue), RedisArgument(acknowledgement.by),
            RedisArgument(acknowledgement.method), RedisArgument(policy.retentionMs),
        ]
        let reply = (try await client.evalScript(CriticalScripts.ack, keys: staticKeys + studyResultKeys(study), arguments: arguments)).array ?? []
        guard reply.first?.string == "ok" else { throw CriticalResultError(.notFound, "no critical result for this study") }
        if let newly = reply.last?.int, newly > 0 { acknowledgedCounter.increment(by: Int(newly)) }
        return try await results(study: study).filter { $0.site == site }
    }

    /// Sends a study's dead-lettered deliveries again; returns how many.
    public func retryDead(study: StudyUID, now: Int64, actor: AuditActor? = nil) async throws -> Int {
        let reply = try await client.evalScript(CriticalScripts.retry, keys: staticKeys + studyResultKeys(study),
                                                arguments: baseArguments(now: now, actor: actor) + [RedisArgument(study.rawValue)])
        return Int(reply.int ?? 0)
    }

    // MARK: Reading

    /// A study's results (one per source at most).
    public func results(study: StudyUID) async throws -> [CriticalResult] {
        try await results(members: CriticalSource.allCases.map { CriticalResultKeys.member(study: study.rawValue, source: $0) })
    }

    func results(members: [String]) async throws -> [CriticalResult] {
        guard !members.isEmpty else { return [] }
        let replies = try await client.pipeline(members.map { RedisCommand("HGETALL", RedisArgument(keys.result(member: $0))) })
        return replies.compactMap { reply in
            guard let map = reply.fieldMap, !map.isEmpty else { return nil }
            return CriticalResult.parse(map.compactMapValues(\.string))
        }
    }

    /// Unacknowledged results, oldest first; with `includeAcknowledged` also those kept for the
    /// retention.
    public func list(includeAcknowledged: Bool = false, limit: Int = 1000) async throws -> [CriticalResult] {
        var members = (try await client.send("ZRANGE", RedisArgument(keys.open), "0", RedisArgument(limit - 1)).array ?? []).compactMap(\.string)
        if includeAcknowledged {
            members += (try await client.send("ZRANGE", RedisArgument(keys.acknowledged), "0", RedisArgument(limit - 1)).array ?? []).compactMap(\.string)
        }
        return try await results(members: members).sorted { ($0.raisedMs, $0.id) < ($1.raisedMs, $1.id) }
    }

    public func unacknowledgedCount() async throws -> Int {
        Int(try await client.send("ZCARD", RedisArgument(keys.open)).int ?? 0)
    }

    /// Dead-lettered deliveries: `<source>:<study>|<level>` with when they gave up (ms).
    public func deadLetters(limit: Int = 1000) async throws -> [(entry: String, atMs: Int64)] {
        let reply = try await client.send("ZRANGE", RedisArgument(keys.dead), "0", RedisArgument(limit - 1), "WITHSCORES").array ?? []
        return stride(from: 0, to: reply.count - 1, by: 2).compactMap { index in
            guard let entry = reply[index].string, let at = reply[index + 1].double else { return nil }
            return (entry, Int64(at))
        }
    }

    // MARK: Configuration

    public func setSiteWebhook(_ webhook: SiteWebhook, site: SiteID) async throws {
        let data = try JSONEncoder().encode(webhook)
        try await client.send("HSET", RedisArgument(keys.siteWebhooks), RedisArgument(site.rawValue), RedisArgument(Array(data)))
    }

    public func siteWebhook(_ site: SiteID) async throws -> SiteWebhook? {
        guard let bytes = try await client.send("HGET", RedisArgument(keys.siteWebhooks), RedisArgument(site.rawValue)).bytes else { return nil }
        return try? JSONDecoder().decode(SiteWebhook.self, from: Data(bytes))
    }

    @discardableResult
    public func removeSiteWebhook(_ site: SiteID) async throws -> Bool {
        try await client.send("HDEL", RedisArgument(keys.siteWebhooks), RedisArgument(site.rawValue)).int == 1
    }

    /// Sites with a webhook, with their (secret-free) descriptions.
    public func siteWebhooks() async throws -> [(site: String, webhook: SiteWebhook)] {
        let map = try await client.send("HGETALL", RedisArgument(keys.siteWebhooks)).fieldMap ?? [:]
        return map.compactMap { site, value in
            guard let bytes = value.bytes, let webhook = try? JSONDecoder().decode(SiteWebhook.self, from: Data(bytes)) else { return nil }
            return (site, webhook)
        }.sorted { $0.site < $1.site }
    }

    public func setAdminWebhook(_ endpoint: WebhookEndpoint) async throws {
        try await client.send("SET", RedisArgument(keys.adminWebhook), RedisArgument(Array(try JSONEncoder().encode(endpoint))))
    }

    public func adminWebhook() async throws -> WebhookEndpoint? {
        guard let bytes = try await client.send("GET", RedisArgument(keys.adminWebhook)).bytes else { return nil }
        return try? JSONDecoder().decode(WebhookEndpoint.self, from: Data(bytes))
    }

    /// The endpoint a delivery goes to: the site's webhook (level 0), its second contact (1),
    /// or the admins' (2).
    public func endpoint(site: SiteID, level: Int) async throws -> WebhookEndpoint? {
        level == 2 ? try await adminWebhook() : try await siteWebhook(site)?.endpoint(level: level)
    }
}

/// A site's acknowledgement as the gateway receives it: `{"by": "...", "method": "..."}`.
public struct CriticalAcknowledgementRequest: Sendable, Equatable {
    /// How the result reached a person. `webhook`: the site's system acknowledged on receipt.
    public static let methods: Set<String> = ["phone", "webhook", "portal", "email", "fax", "in-person", "pager", "other"]

    public var by: String
    public var method: String

    public init(by: String, method: String) throws(CriticalResultError) {
        let trimmed = by.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 200, !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw CriticalResultError(.invalidAcknowledgement, "by must be 1-200 characters on one line: who took the result")
        }
        guard Self.methods.contains(method) else {
            throw CriticalResultError(.invalidAcknowledgement, "method must be one of \(Self.methods.sorted().joined(separator: ", "))")
        }
        self.by = trimmed
        self.method = method
    }

    /// Parses a request body.
    public init(json body: [UInt8]) throws(CriticalResultError) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw CriticalResultError(.invalidAcknowledgement, "the body must be a JSON object {\"by\": ..., \"method\": ...}")
        }
        guard let by = object["by"] as? String else { throw CriticalResultError(.invalidAcknowledgement, "by is missing or not text") }
        guard let method = object["method"] as? String else { throw CriticalResultError(.invalidAcknowledgement, "method is missing or not text") }
        try self.init(by: by, method: method)
    }
}
