import Audit
import Foundation
import RadGridCore
import RedisClient

/// QC's keys in Redis, all tagged `{qc}`:
///
/// | key | type | owner / lifetime |
/// | --- | --- | --- |
/// | `{qc}:case:<case>` | hash, one signed read and its second read | unsampled: expires after `unsampledRetentionDays`; closed: after `retentionDays`; open ones stay until closed |
/// | `{qc}:open` | zset case → opened ms | the scripts: a review leaves it when closed |
/// | `{qc}:arbitration` | zset case → scored ms | the scripts: left when arbitrated |
/// | `{qc}:reads` | hash expert → signed reads | configuration-like counters, one field per expert (kept) |
/// | `{qc}:stats` | hash `<expert>\|reviews`, `<expert>\|<score>` | per-expert figures (kept; `radgridctl qc stats`) |
/// | `{qc}:flagged` | hash expert → `rate\|reviews\|ms` | cleared by `radgridctl qc unflag` |
/// | `{qc}:audit:*` | the `qc` audit chain | the audit chain's own retention |
public struct QCStore: Sendable {
    public let client: RedisClient
    public let prefix: KeyPrefix
    public let audit: AuditTrail

    static let chain = "qc"

    public init(client: RedisClient, prefix: KeyPrefix) {
        self.client = client
        self.prefix = prefix
        audit = AuditTrail(client: client, prefix: prefix, chain: Self.chain)
    }

    var base: String { prefix.value + "{qc}:" }
    public func recordKey(_ caseID: String) -> String { base + "case:" + caseID }
    public var openKey: String { base + "open" }
    public var arbitrationKey: String { base + "arbitration" }
    public var readsKey: String { base + "reads" }
    public var statsKey: String { base + "stats" }
    public var flaggedKey: String { base + "flagged" }

    static let sign = RedisScript(QualityControlLua.sign)
    static let dispute = RedisScript(QualityControlLua.dispute)
    static let score = RedisScript(QualityControlLua.score)
    static let arbitrate = RedisScript(QualityControlLua.arbitrate)

    func keys(_ caseID: String, study: String) -> [RedisArgument] {
        [recordKey(caseID), openKey, arbitrationKey, readsKey, statsKey, flaggedKey].map { RedisArgument($0) }
            + audit.scriptKeys(study: study).map { RedisArgument($0) }
    }

    func run(_ script: RedisScript, caseID: String, study: String, now: Int64, actor: String, _ arguments: [RedisArgument]) async throws -> [String] {
        try await audit.register()
        let reply = try await client.evalScript(script, keys: keys(caseID, study: study),
                                                arguments: [RedisArgument(now), RedisArgument(actor)] + arguments)
        try reply.throwingServerError()
        return (reply.array ?? []).map { $0.string ?? "" }
    }

    /// One signed read (see `sign.lua`): returns whether it is read again and why, and
    /// whether this call decided it (false on a retried signature).
    func recordSignedRead(_ read: SignedRead, randomlySampled: Bool, otherReasons: [QCReason], policy: QCPolicy, now: Int64,
                          actor: String) async throws -> (sampled: Bool, reasons: [String], new: Bool) {
        let reply = try await run(Self.sign, caseID: read.caseID, study: read.study, now: now, actor: actor, [
            RedisArgument(read.caseID), RedisArgument(read.study), RedisArgument(read.expert), RedisArgument(read.expertHome ?? ""),
            RedisArgument(read.modality), RedisArgument(read.specialty), RedisArgument(read.site), RedisArgument(read.region ?? ""),
            RedisArgument(randomlySampled ? 1 : 0), RedisArgument(policy.firstCases),
            RedisArgument(otherReasons.map(\.rawValue).joined(separator: ",")),
            RedisArgument(Int64(policy.unsampledRetentionDays) * 86_400_000), RedisArgument(read.weight),
        ])
        guard reply.count == 3 else { throw QCError("qc.reply", "unexpected reply from the sign script") }
        return (reply[1] == "1", reply[2].split(separator: ",").map(String.init), reply[0] == "new")
    }

    /// The QC record of a read case, nil when QC never saw it (or it expired).
    public func review(_ caseID: String) async throws -> QCReview? {
        Self.review(caseID, try await client.send("HGETALL", RedisArgument(recordKey(caseID))))
    }

    public func reviews(_ caseIDs: [String]) async throws -> [QCReview?] {
        guard !caseIDs.isEmpty else { return [] }
        let replies = try await client.pipeline(caseIDs.map { RedisCommand("HGETALL", RedisArgument(recordKey($0))) })
        return zip(caseIDs, replies).map { Self.review($0, $1) }
    }

    static func review(_ caseID: String, _ reply: RedisValue) -> QCReview? {
        guard let map = reply.fieldMap, !map.isEmpty, let state = map["state"]?.string.flatMap(QCReview.State.init(rawValue:)) else { return nil }
        func s(_ key: String) -> String? { map[key]?.string.flatMap { $0.isEmpty ? nil : $0 } }
        func i(_ key: String) -> Int64? { map[key]?.int }
        return QCReview(caseID: caseID, study: s("study") ?? "", firstReader: s("first_reader") ?? "", firstReaderHome: s("first_home"),
                        modality: s("modality") ?? "", specialty: s("specialty") ?? "", site: s("site") ?? "", region: s("region"),
                        weight: Int(i("weight") ?? 1), state: state, reasons: (s("reasons") ?? "").split(separator: ",").map(String.init),
                        signedAt: i("signed_at") ?? 0, openedAt: i("opened_at"), reviewer: s("reviewer"),
                        score: s("score").flatMap(RadpeerScore.init(rawValue:)), comment: s("comment"), scoredAt: i("scored_at"),
                        arbiter: s("arbiter"), arbiterComment: s("arbiter_comment"),
                        finalScore: s("final").flatMap(RadpeerScore.init(rawValue:)), closedAt: i("closed_at"))
    }

    /// Reviews not yet closed (being read or awaiting arbitration), oldest first.
    public func openReviews(limit: Int = 1000) async throws -> [QCReview] {
        let ids = (try await client.send("ZRANGE", RedisArgument(openKey), "0", RedisArgument(limit - 1)).array ?? []).compactMap(\.string)
        return try await reviews(ids).compactMap { $0 }
    }

    /// Reviews waiting for a qc-role reader, oldest first.
    public func arbitrationQueue(limit: Int = 1000) async throws -> [QCReview] {
        let ids = (try await client.send("ZRANGE", RedisArgument(arbitrationKey), "0", RedisArgument(limit - 1)).array ?? []).compactMap(\.string)
        return try await reviews(ids).compactMap { $0 }
    }

    /// Per-expert figures (every expert with a signed read), by expert id.
    public func figures(policy: QCPolicy) async throws -> [QCExpertFigures] {
        let replies = try await client.pipeline([
            RedisCommand("HGETALL", RedisArgument(readsKey)), RedisCommand("HGETALL", RedisArgument(statsKey)),
            RedisCommand("HGETALL", RedisArgument(flaggedKey)),
        ])
        let reads = (replies[0].fieldMap ?? [:]).compactMapValues { $0.int }
        let stats = (replies[1].fieldMap ?? [:]).compactMapValues { $0.int }
        let flagged = Set((replies[2].fieldMap ?? [:]).keys)
        var experts = Set(reads.keys)
        for key in stats.keys { if let bar = key.firstIndex(of: "|") { experts.insert(String(key[..<bar])) } }
        return experts.sorted().map { expert in
            let reviews = Int(stats[expert + "|reviews"] ?? 0)
            var byScore: [String: Int] = [:]
            for score in RadpeerScore.allCases { byScore[score.rawValue] = Int(stats[expert + "|" + score.rawValue] ?? 0) }
            let discrepant = policy.flag.scores.reduce(0) { $0 + (byScore[$1.rawValue] ?? 0) }
            return QCExpertFigures(expert: expert, reads: Int(reads[expert] ?? 0), reviews: reviews, byScore: byScore,
                                   discrepancyRate: reviews > 0 ? Double(discrepant) / Double(reviews) : 0, flagged: flagged.contains(expert))
        }
    }

    /// Clears a flag (after the expert's review by the QC committee), audited.
    public func unflag(_ expert: String, actor: AuditActor) async throws -> Bool {
        let removed = try await client.send("HDEL", RedisArgument(flaggedKey), RedisArgument(expert)).int ?? 0
        if removed > 0 { _ = try await audit.append(actor: actor, action: "qc.unflagged", details: "expert=\(expert)") }
        return removed > 0
    }
}

/// A signed first read, as QC records it.
public struct SignedRead: Sendable, Hashable {
    public var caseID: String
    public var study: String
    public var expert: String
    public var expertHome: String?
    public var modality: String
    public var specialty: String
    public var site: String
    public var region: String?
    public var weight: Int

    public init(caseID: String, study: String, expert: String, expertHome: String?, modality: String, specialty: String, site: String,
                region: String?, weight: Int) {
        self.caseID = caseID
        self.study = study
        self.expert = expert
        self.expertHome = expertHome
        self.modality = modality
        self.specialty = specialty
        self.site = site
        self.region = region
        self.weight = weight
    }
}
