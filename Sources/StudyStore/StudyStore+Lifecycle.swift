import Audit
import GridContract
import Metrics
import RadGridCore
import RedisClient
import StudyLifecycle

/// Carries out the effects a process can do beyond the store itself (enqueue tasks, submit a
/// case). A process that cannot perform an effect throws: the study stays due for the
/// sweeper, whose coordinator can.
public protocol StudyEffectPerformer: Sendable {
    func perform(_ effect: StudyEffect, for record: StudyRecord) async throws
}

/// For processes that only make changes needing no outside effect (workers, the gateway).
public struct StoreOnlyEffects: StudyEffectPerformer {
    public init() {}
    public func perform(_ effect: StudyEffect, for record: StudyRecord) async throws {
        throw StudyStoreError(.notApplicable, "this process cannot carry out \(effect); the sweeper will")
    }
}

/// What `handle` did.
public enum StudyHandling: Sendable, Hashable {
    /// The decision was stored (if it changed anything) and its effects ran.
    case handled(StudyDecision, record: StudyRecord)
    /// No such study (never stored, or expired).
    case unknownStudy
}

extension StudyStore {
    /// Feeds one event to the state machine and carries out its decision: the repair check
    /// armed first, the change stored only if the record did not change meanwhile (else
    /// decided again on the new record), the effects run, then the settled check.
    @discardableResult
    public func handle(_ event: StudyEvent, study uid: StudyUID, actor: AuditActor, machine: StudyStateMachine,
                       effects performer: some StudyEffectPerformer = StoreOnlyEffects(),
                       now clock: @Sendable () -> Int64 = { WallClock.nowMilliseconds() }) async throws -> StudyHandling {
        for attempt in 0..<12 {
            guard let record = try await record(uid) else { return .unknownStudy }
            let now = clock()
            let decision = machine.decide(record, event, now: now)
            var current = record
            if let next = decision.next {
                switch try await store(next, over: record, audit: decision.audit, actor: actor, repairAt: now + machine.settings.repairAfter) {
                case .conflict:
                    // Another process changed the study between our read and our write: decide again.
                    if attempt > 2 { try await Task.sleep(for: .milliseconds(Int64(attempt) * 2)) }
                    continue
                case .missing:
                    return .unknownStudy
                case .stored(let version):
                    current = next
                    current.version = version
                    if next.state != record.state { current.updatedAt = now }
                }
            } else if !decision.effects.isEmpty {
                try await client.send("ZADD", RedisArgument(keys.dueStudies), RedisArgument(now + machine.settings.repairAfter), RedisArgument(uid.rawValue))
            }
            for effect in decision.effects {
                try await perform(effect, for: current, actor: actor, performer: performer)
            }
            switch decision.settle {
            case .keep: break
            case .at(let time): try await client.send("ZADD", RedisArgument(keys.dueStudies), RedisArgument(time), RedisArgument(uid.rawValue))
            case .remove: try await client.send("ZREM", RedisArgument(keys.dueStudies), RedisArgument(uid.rawValue))
            }
            return .handled(decision, record: current)
        }
        throw StudyStoreError(.contended, "the study kept changing while a decision was being stored")
    }

    enum StoreResult { case stored(version: Int), conflict, missing }

    /// The apply script (version-checked) pipelined after the repair check, then the state
    /// index when the state changed.
    func store(_ next: StudyRecord, over record: StudyRecord, audit note: AuditNote?, actor: AuditActor, repairAt: Int64) async throws -> StoreResult {
        let (set, delete) = RecordCodec.difference(from: record, to: next)
        var arguments: [RedisArgument] = [
            RedisArgument(record.version), RedisArgument(next.state == record.state ? "" : next.state.rawValue),
            RedisArgument(actor.description), RedisArgument(note?.action ?? ""), RedisArgument(note?.details ?? ""), RedisArgument(set.count),
        ]
        for (field, value) in set { arguments += [RedisArgument(field), RedisArgument(value)] }
        arguments += delete.map { RedisArgument($0) }
        // Durable when the client asks replicas to acknowledge (`?wait=N`): a decision (the
        // intake commit among them) is not reported done before the replicas hold it.
        let replies = try await client.pipeline([
            RedisCommand("ZADD", RedisArgument(keys.dueStudies), RedisArgument(repairAt), RedisArgument(record.uid.rawValue)),
            .script(Self.applyScript, keys: scriptKeys(record.uid), arguments: arguments),
        ], durable: true)
        try replies[0].throwingServerError()
        let parts = (try replies[1].throwingServerError().array ?? []).map { $0.string ?? "" }
        switch parts.first {
        case "ok":
            if next.state != record.state { try await moveIndex(record.uid, site: record.site, priority: next.priority, from: record.state, to: next.state) }
            if let caseID = next.caseID, caseID != record.caseID {
                // Router events name the case; this maps it back to the study (ended with the study).
                try await client.send("SET", RedisArgument(keys.caseStudy(caseID)), RedisArgument(record.uid.rawValue),
                                      "EX", RedisArgument(Int((LifecycleSettings().reportedRetention + LifecycleSettings().endedRetention) / 1000)))
            }
            return .stored(version: Int(parts.count > 1 ? parts[1] : "") ?? record.version + 1)
        case "conflict": return .conflict
        case "missing": return .missing
        default: throw RedisError(.unexpectedReply, "apply script returned \(parts)")
        }
    }

    func moveIndex(_ uid: StudyUID, site: SiteID, priority: Priority, from old: StudyState, to new: StudyState) async throws {
        for reply in try await client.pipeline([
            RedisCommand("SREM", RedisArgument(keys.studies(in: old)), RedisArgument(uid.rawValue)),
            RedisCommand("SADD", RedisArgument(keys.studies(in: new)), RedisArgument(uid.rawValue)),
            Self.openStudyIndex(keys, site: site, uid: uid, priority: priority, open: !new.isTerminal),
        ]) { try reply.throwingServerError() }
    }

    /// A site's open studies (quota and stat share): uid → priority while open, gone once ended.
    static func openStudyIndex(_ keys: GridKeys, site: SiteID, uid: StudyUID, priority: Priority, open: Bool) -> RedisCommand {
        open ? RedisCommand("HSET", RedisArgument(keys.siteOpenStudies(site)), RedisArgument(uid.rawValue), RedisArgument(priority.rawValue))
             : RedisCommand("HDEL", RedisArgument(keys.siteOpenStudies(site)), RedisArgument(uid.rawValue))
    }

    /// Puts the study in its state's index and no other (the sweeper calls it on every visit,
    /// which repairs what a crash between a change and its index update left behind).
    public func repairIndex(_ record: StudyRecord) async throws {
        let commands = StudyState.allCases.map { state in
            RedisCommand(state == record.state ? "SADD" : "SREM", RedisArgument(keys.studies(in: state)), RedisArgument(record.uid.rawValue))
        } + [RedisCommand("ZADD", RedisArgument(keys.allStudies), "NX", RedisArgument(record.createdAt), RedisArgument(record.uid.rawValue)),
             Self.openStudyIndex(keys, site: record.site, uid: record.uid, priority: record.priority, open: !record.state.isTerminal)]
        for reply in try await client.pipeline(commands) { try reply.throwingServerError() }
    }

    func perform(_ effect: StudyEffect, for record: StudyRecord, actor: AuditActor, performer: some StudyEffectPerformer) async throws {
        switch effect {
        case .announceCommit:
            try await client.send("XADD", RedisArgument(keys.committedStream), "MAXLEN", "~", "100000", "*", "study", RedisArgument(record.uid.rawValue))
        case .deleteBlobs:
            _ = try await deleteBlobs(study: record.uid, actor: actor)
        case .expire:
            try await expire(record, actor: actor)
        case .recordAssignment(let receivedAt):
            let seconds = Double(max(0, WallClock.nowMilliseconds() - receivedAt)) / 1000
            Timer(label: "radgrid_study_received_to_assigned_seconds", preferredDisplayUnit: .seconds).recordSeconds(seconds)
        case .enqueueTasks, .submitCase:
            try await performer.perform(effect, for: record)
        }
    }

    /// Retention: deletes a study's compressed instances (the record and audit stay).
    @discardableResult
    public func deleteBlobs(study uid: StudyUID, actor: AuditActor) async throws -> Int {
        let study = keys.study(uid)
        let blobs = try await instanceUIDs(uid).map { RedisArgument(study.blob($0)) }
        let reply = try await client.evalScript(Self.deleteBlobsScript, keys: scriptKeys(uid) + blobs, arguments: [RedisArgument(actor.description)])
        return Int(reply.int ?? 0)
    }

    /// Keeps the study's compressed instances past its report (QC reads it again); the
    /// retention step defers until `releaseBlobHold`.
    public func holdBlobs(_ uid: StudyUID, actor: AuditActor, reason: String) async throws {
        let reply = try await client.evalScript(Self.blobHoldScript, keys: scriptKeys(uid),
                                                arguments: [RedisArgument(actor.description), "hold", RedisArgument(reason)])
        try reply.throwingServerError()
    }

    /// Ends a hold; instances whose deletion was deferred go now. Returns how many.
    @discardableResult
    public func releaseBlobHold(_ uid: StudyUID, actor: AuditActor) async throws -> Int {
        let study = keys.study(uid)
        let blobs = try await instanceUIDs(uid).map { RedisArgument(study.blob($0)) }
        let reply = try await client.evalScript(Self.blobHoldScript, keys: scriptKeys(uid) + blobs,
                                                arguments: [RedisArgument(actor.description), "release", ""])
        try reply.throwingServerError()
        return Int(reply.array?.last?.int ?? 0)
    }

    /// Retention: drops the record, its instances and its index entries (the audit chain stays).
    func expire(_ record: StudyRecord, actor: AuditActor) async throws {
        let study = keys.study(record.uid)
        let blobs = try await instanceUIDs(record.uid).map { RedisArgument(study.blob($0)) }
        _ = try await client.evalScript(Self.expireScript, keys: scriptKeys(record.uid) + [RedisArgument(study.instances), RedisArgument(study.outcomes), RedisArgument(study.thumbnails), RedisArgument(study.report)] + blobs,
                                        arguments: [RedisArgument(actor.description)])
        var cleanup = StudyState.allCases.map { RedisCommand("SREM", RedisArgument(keys.studies(in: $0)), RedisArgument(record.uid.rawValue)) }
        cleanup.append(RedisCommand("ZREM", RedisArgument(keys.allStudies), RedisArgument(record.uid.rawValue)))
        cleanup.append(RedisCommand("ZREM", RedisArgument(keys.dueStudies), RedisArgument(record.uid.rawValue)))
        cleanup.append(Self.openStudyIndex(keys, site: record.site, uid: record.uid, priority: record.priority, open: false))
        if let caseID = record.caseID { cleanup.append(RedisCommand("DEL", RedisArgument(keys.caseStudy(caseID)))) }
        for reply in try await client.pipeline(cleanup) { try reply.throwingServerError() }
    }

    // MARK: The due index (the sweeper's)

    /// Studies due now, each claimed for `lease` so other sweepers skip it meanwhile.
    public func claimDue(limit: Int = 100, lease: Duration = .seconds(30)) async throws -> [StudyUID] {
        let reply = try await client.evalScript(Self.claimDueScript, keys: [RedisArgument(keys.dueStudies)],
                                                arguments: [RedisArgument(limit), RedisArgument(lease.components.seconds * 1000)])
        return (reply.array ?? []).compactMap { $0.string.flatMap { try? StudyUID($0) } }
    }

    /// Earliest due time, for the sweeper's sleep.
    public func nextDue() async throws -> Int64? {
        let reply = try await client.send("ZRANGE", RedisArgument(keys.dueStudies), "0", "0", "WITHSCORES")
        guard let pair = reply.array, pair.count == 2 else { return nil }
        return pair[1].string.flatMap { Double($0) }.map { Int64($0) }
    }

    /// Drops a due entry whose study no longer exists.
    public func forgetDue(_ uid: StudyUID) async throws {
        try await client.send("ZREM", RedisArgument(keys.dueStudies), RedisArgument(uid.rawValue))
    }
}
