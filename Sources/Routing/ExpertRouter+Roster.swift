import Foundation
import RadGridCore
import RedisClient

extension ExpertRouter {
    struct StoredExpert {
        var pools: String
        var profile: Expert?
        var presence: Presence
        var heartbeatUntil: Int64
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    func readStored(_ ids: [String]) async throws -> [StoredExpert] {
        guard !ids.isEmpty else { return [] }
        var commands: [RedisCommand] = []
        for id in ids {
            commands.append(RedisCommand("HGET", RedisArgument(keys.pools), RedisArgument(id)))
            commands.append(RedisCommand("HGET", RedisArgument(keys.profile), RedisArgument(id)))
            commands.append(RedisCommand("HGET", RedisArgument(keys.presence), RedisArgument(id)))
        }
        let replies = try await redis.pipeline(commands)
        return ids.indices.map { index in
            let pools = replies[index * 3].string ?? ""
            let profile = replies[index * 3 + 1].bytes.flatMap { try? JSONDecoder().decode(Expert.self, from: Data($0)) }
            let presenceText = replies[index * 3 + 2].string ?? ""
            let parts = presenceText.split(separator: "|").map(String.init)
            let presence = parts.first.flatMap(Presence.init(rawValue:)) ?? .offline
            let heartbeat = parts.count > 1 ? Int64(parts[1]) ?? 0 : 0
            return StoredExpert(pools: pools, profile: profile, presence: presence, heartbeatUntil: heartbeat)
        }
    }

    /// The sync script command for one expert (upsert, availability refresh or removal).
    func syncCommand(mode: String, id: String, stored: StoredExpert, expert: Expert?, presence: Presence, heartbeatUntil: Int64, now: Int64) throws -> RedisCommand {
        let oldPools = stored.pools.split(separator: " ").map(String.init)
        let newPools = expert?.poolNames ?? []
        let allPools = Array(Set(oldPools).union(newPools)).sorted()
        let oldScopes = (stored.profile?.credentials ?? []).map(\.scope).joined(separator: " ")
        var until: Int64 = 0, next: Int64 = now + 3_600_000
        var creds = "", profile = ""
        if let expert {
            let availability = Availability.compute(expert: expert, presence: presence, heartbeatUntil: heartbeatUntil, now: now,
                                                   rules: config.qualificationRules)
            until = availability.until
            next = availability.nextCheck
            creds = expert.credentials.map { "\($0.scope)=\($0.expires ?? 0)" }.joined(separator: " ")
            profile = String(decoding: try Self.encoder.encode(expert), as: UTF8.self)
        }
        let arguments: [RedisArgument] = [
            RedisArgument(id), RedisArgument(stored.pools), RedisArgument(mode), RedisArgument(expert?.capacity ?? 0),
            RedisArgument(expert?.homeSite ?? ""), RedisArgument(until), RedisArgument(next), RedisArgument(newPools.joined(separator: " ")),
            RedisArgument(creds), RedisArgument(oldScopes), RedisArgument(profile), RedisArgument("\(presence.rawValue)|\(heartbeatUntil)"),
            RedisArgument(mode == "upsert" ? Self.changedFields(from: stored.profile, to: expert) : ""),
            RedisArgument(expert.map { $0.qualification(at: now, rules: config.qualificationRules).failures.map(\.rawValue).joined(separator: ",") } ?? ""),
            RedisArgument(allPools.count),
        ] + allPools.map { RedisArgument($0) }
        return command(RoutingScripts.sync, caseID: nil, pools: allPools, now: now, arguments: arguments)
    }

    /// Roster fields an upsert changes, for the audit ("new" for a new expert); names only,
    /// never values (licence numbers and names stay out of the trail).
    static func changedFields(from old: Expert?, to new: Expert?) -> String {
        guard let new else { return "" }
        guard let old else { return "new" }
        var fields: [String] = []
        if old.name != new.name { fields.append("name") }
        if old.specialties != new.specialties { fields.append("specialties") }
        if old.credentials != new.credentials { fields.append("credentials") }
        if old.capacity != new.capacity { fields.append("capacity") }
        if old.timeZone != new.timeZone || old.shifts != new.shifts { fields.append("shifts") }
        if old.homeSite != new.homeSite { fields.append("home_site") }
        if old.licence != new.licence { fields.append("licence") }
        if old.title != new.title { fields.append("title") }
        if old.practiceSince != new.practiceSince { fields.append("practice_since") }
        if old.suspended != new.suspended { fields.append("suspended") }
        if old.suspendedSpecialties != new.suspendedSpecialties { fields.append("suspended_for") }
        return fields.joined(separator: ",")
    }

    /// Adds or replaces experts (validated first; nothing is written when one is invalid).
    /// Presence and heartbeat are kept unless given.
    public func upsertExperts(_ experts: [Expert], presence: Presence? = nil, heartbeatUntil: Int64? = nil) async throws {
        for expert in experts { try expert.validate() }
        var index = 0
        while index < experts.count {
            let chunk = Array(experts[index..<min(index + 500, experts.count)])
            index += chunk.count
            var pending = chunk
            for _ in 0..<5 where !pending.isEmpty {
                let stored = try await readStored(pending.map(\.id))
                let now = self.now
                let commands = try zip(pending, stored).map { expert, stored in
                    try syncCommand(mode: "upsert", id: expert.id, stored: stored, expert: expert,
                                    presence: presence ?? stored.presence, heartbeatUntil: heartbeatUntil ?? stored.heartbeatUntil, now: now)
                }
                let replies = try await redis.pipeline(commands)
                var retry: [Expert] = []
                for (expert, reply) in zip(pending, replies) {
                    let parts = Self.strings(try reply.throwingServerError())
                    if parts.first == "retry" { retry.append(expert) }
                }
                pending = retry
            }
            if !pending.isEmpty { throw RoutingError.conflict("roster of \(pending[0].id) changed concurrently; try again") }
        }
    }

    /// Removes an expert; refused while they hold open cases.
    public func removeExpert(_ id: String) async throws {
        for _ in 0..<5 {
            let stored = try await readStored([id])[0]
            guard stored.profile != nil else { throw RoutingError.notFound("expert \(id) does not exist") }
            let reply = try await redis.send(syncCommand(mode: "remove", id: id, stored: stored, expert: nil, presence: .offline, heartbeatUntil: 0, now: now))
            switch Self.strings(reply).first {
            case "ok": return
            case "busy": throw RoutingError("routing.expertBusy", "expert \(id) still holds open cases")
            default: continue
            }
        }
        throw RoutingError.conflict("roster of \(id) changed concurrently; try again")
    }

    /// Recomputes availability (shift, presence, heartbeat, credentials) and pool membership.
    func refresh(_ ids: [String], presence: Presence? = nil, heartbeatUntil: Int64? = nil, capacity: Int? = nil) async throws {
        var pending = ids
        for _ in 0..<5 where !pending.isEmpty {
            let stored = try await readStored(pending)
            let now = self.now
            var commands: [RedisCommand] = []
            var used: [String] = []
            for (id, entry) in zip(pending, stored) {
                guard var expert = entry.profile else {
                    if ids.count == 1 { throw RoutingError.notFound("expert \(id) does not exist") }
                    // Gone from the roster: drop it from the sweeper schedule.
                    commands.append(RedisCommand("ZREM", RedisArgument(keys.next), RedisArgument(id)))
                    used.append("")
                    continue
                }
                if let capacity {
                    expert.capacity = capacity
                    try expert.validate()
                }
                commands.append(try syncCommand(mode: capacity == nil ? "avail" : "upsert", id: id, stored: entry, expert: expert,
                                                presence: presence ?? entry.presence, heartbeatUntil: heartbeatUntil ?? entry.heartbeatUntil, now: now))
                used.append(id)
            }
            let replies = try await redis.pipeline(commands)
            var retry: [String] = []
            for (id, reply) in zip(used, replies) where !id.isEmpty {
                if Self.strings(try reply.throwingServerError()).first == "retry" { retry.append(id) }
            }
            pending = retry
        }
    }

    /// Sets presence; `online` also counts as a heartbeat.
    public func setPresence(_ id: String, _ presence: Presence) async throws {
        let heartbeat = presence == .online ? now + Int64(config.heartbeatTTLSeconds) * 1000 : 0
        try await refresh([id], presence: presence, heartbeatUntil: heartbeat)
    }

    /// Keeps an expert online for the heartbeat TTL (or `ttlMilliseconds`).
    public func heartbeat(_ id: String, ttlMilliseconds: Int64? = nil) async throws {
        try await refresh([id], presence: .online, heartbeatUntil: now + (ttlMilliseconds ?? Int64(config.heartbeatTTLSeconds) * 1000))
    }

    /// Changes capacity; more room wakes waiting cases.
    public func setCapacity(_ id: String, _ capacity: Int) async throws {
        try await refresh([id], capacity: capacity)
    }

    /// Re-evaluates experts whose shift, heartbeat or credential changes are due.
    @discardableResult
    public func sweepDue(limit: Int = 500) async throws -> Int {
        let due = Self.strings(try await redis.send("ZRANGE", RedisArgument(keys.next), "-inf", RedisArgument(now), "BYSCORE", "LIMIT", "0", RedisArgument(limit)))
        guard !due.isEmpty else { return 0 }
        try await refresh(due)
        return due.count
    }

    /// Re-evaluates every expert (after a restart, or on demand).
    public func sweepAll() async throws {
        let ids = Self.strings(try await redis.send("HKEYS", RedisArgument(keys.profile)))
        var index = 0
        while index < ids.count {
            try await refresh(Array(ids[index..<min(index + 500, ids.count)]))
            index += 500
        }
    }

    public func expertState(_ id: String) async throws -> ExpertState? {
        try await expertStates([id]).first
    }

    public func expertStates(_ ids: [String]) async throws -> [ExpertState] {
        guard !ids.isEmpty else { return [] }
        let stored = try await readStored(ids)
        var commands: [RedisCommand] = []
        for id in ids {
            commands.append(RedisCommand("HGET", RedisArgument(keys.load), RedisArgument(id)))
            commands.append(RedisCommand("HGET", RedisArgument(keys.open), RedisArgument(id)))
            commands.append(RedisCommand("HGET", RedisArgument(keys.until), RedisArgument(id)))
        }
        let replies = try await redis.pipeline(commands)
        var result: [ExpertState] = []
        for (index, entry) in stored.enumerated() {
            guard let profile = entry.profile else { continue }
            result.append(ExpertState(expert: profile, load: Int(replies[index * 3].int ?? 0), openCases: Int(replies[index * 3 + 1].int ?? 0),
                                      presence: entry.presence, heartbeatUntil: entry.heartbeatUntil,
                                      availableUntil: replies[index * 3 + 2].int ?? 0))
        }
        return result
    }

    public func expertIDs() async throws -> [String] {
        Self.strings(try await redis.send("HKEYS", RedisArgument(keys.profile))).sorted()
    }

    public func allExperts() async throws -> [Expert] {
        let reply = try await redis.send("HVALS", RedisArgument(keys.profile))
        return (reply.array ?? []).compactMap { $0.bytes.flatMap { try? JSONDecoder().decode(Expert.self, from: Data($0)) } }
            .sorted { $0.id < $1.id }
    }
}
