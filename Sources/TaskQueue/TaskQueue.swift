import Logging
import Metrics
import RadGridCore
import RedisClient

/// A reliable, prioritised task queue on Redis Streams.
///
/// Producers call `enqueue`; workers run a `TaskConsumer`, which uses `claim`, `renew`,
/// `complete`, `fail` and `release`. Every state change is one Lua script (see `Scripts`),
/// so a task is never lost between two steps and a late finisher is fenced out.
public final class TaskQueue: Sendable {
    public let client: RedisClient
    public let name: String
    public let configuration: TaskQueueConfiguration
    public let keys: QueueKeys
    let logger: Logger
    let metrics: QueueMetrics
    let completions: CompletionBatcher

    public init(client: RedisClient, name: String = "tasks", configuration: TaskQueueConfiguration = TaskQueueConfiguration(), logger: Logger = Logger(label: "radgrid.queue")) {
        self.client = client
        self.name = name
        self.configuration = configuration
        self.keys = QueueKeys(prefix: configuration.prefix, name: name)
        var logger = logger
        logger[metadataKey: "queue"] = "\(name)"
        self.logger = logger
        self.metrics = QueueMetrics(queue: name)
        self.completions = CompletionBatcher()
    }

    private func command(_ script: RedisScript, extraKeys: [RedisArgument] = [], _ arguments: [RedisArgument]) -> RedisCommand {
        var command = scriptCommand(script, extraKeys: extraKeys.count, capacity: 1024)
        for key in extraKeys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }

    /// `EVALSHA` of `script` with the queue's keys appended; the caller appends its
    /// `extraKeys` keys, then the arguments.
    private func scriptCommand(_ script: RedisScript, extraKeys: Int, capacity: Int) -> RedisCommand {
        var command = RedisCommand.script(script, keyCount: keys.scriptKeys.count + extraKeys, reservingCapacity: capacity)
        for key in keys.scriptKeys { command.append(key) }
        return command
    }

    // MARK: - Producing

    /// Enqueues one task (idempotent by `spec.key`).
    @discardableResult
    public func enqueue(_ spec: TaskSpec) async throws -> EnqueueResult {
        try await enqueue([spec])[0]
    }

    /// Enqueues many tasks in one round trip (one script call per 100 tasks, pipelined).
    @discardableResult
    public func enqueue(_ specs: [TaskSpec]) async throws -> [EnqueueResult] {
        if specs.isEmpty { return [] }
        let chunks = stride(from: 0, to: specs.count, by: 100).map { specs[$0..<min($0 + 100, specs.count)] }
        let replies = try await client.pipeline(chunks.map { enqueueCommand(Array($0)) })
        var results: [EnqueueResult] = []
        results.reserveCapacity(specs.count)
        for (chunk, reply) in zip(chunks, replies) {
            try reply.throwingServerError()
            guard let parts = reply.array, parts.count == chunk.count else { throw TaskQueueError.unexpectedReply("enqueue") }
            for (offset, spec) in chunk.enumerated() {
                let result = try Self.parseEnqueue(parts[offset], group: spec.group)
                if case .enqueued = result { metrics.lane(spec.lane).enqueued.increment() }
                results.append(result)
            }
        }
        return results
    }

    func enqueueCommand(_ specs: [TaskSpec]) -> RedisCommand {
        var command = scriptCommand(Scripts.enqueue, extraKeys: 0, capacity: 512 + specs.reduce(0) { $0 + $1.key.utf8.count + $1.payload.count + 48 })
        command.append(specs.count)
        for spec in specs {
            command.append(spec.key)
            command.append(spec.payload)
            command.append(spec.lane.index)
            command.append(spec.maxAttempts ?? configuration.maxAttempts)
            command.append(spec.group ?? "")
        }
        return command
    }

    /// One task's value in the enqueue script's reply: entry id, '=' + status letter, or '!'.
    static func parseEnqueue(_ value: RedisValue, group: String?) throws -> EnqueueResult {
        guard let text = value.string, let marker = text.utf8.first else { throw TaskQueueError.unexpectedReply("enqueue") }
        switch marker {
        case UInt8(ascii: "="): return .duplicate(TaskStatus(code: String(text.dropFirst())))
        case UInt8(ascii: "!"): throw TaskQueueError(code: "queue.unknownGroup", message: "fan-in group '\(group ?? "")' does not exist; call expectGroup first")
        default: return .enqueued(entryID: text)
        }
    }

    /// Creates fan-in group `id`: when `count` member tasks (enqueued with `group: id`) have
    /// completed, `then` is enqueued — exactly once, by the completion script of the last member.
    /// Returns false when the group already exists (the call is idempotent).
    @discardableResult
    public func expectGroup(id: String, count: Int, then next: TaskSpec) async throws -> Bool {
        let reply = try await client.send(expectGroupCommand(id: id, count: count, then: next))
        if reply.int == 2 { metrics.lane(next.lane).enqueued.increment() }
        return reply.int != 0
    }

    func expectGroupCommand(id: String, count: Int, then next: TaskSpec) -> RedisCommand {
        command(Scripts.expectGroup, [
            RedisArgument(id), RedisArgument(count), RedisArgument(next.key), RedisArgument(next.payload),
            RedisArgument(next.lane.index), RedisArgument(next.maxAttempts ?? configuration.maxAttempts), RedisArgument(next.group ?? ""),
        ])
    }

    /// Creates the group, then enqueues its members in one pipelined round trip.
    /// (Two round trips: in one pipeline a script reload after NOSCRIPT could reorder them.)
    public func enqueueGroup(id: String, members: [TaskSpec], then next: TaskSpec) async throws -> [EnqueueResult] {
        var members = members
        for index in members.indices { members[index].group = id }
        try await expectGroup(id: id, count: members.count, then: next)
        return try await enqueue(members)
    }

    /// The result a completion stored for `key` (until `resultTTL`).
    public func result(forKey key: String) async throws -> [UInt8]? {
        try await client.send("GET", RedisArgument(keys.result(key))).bytes
    }

    /// Whether the queue still holds each task (waiting, claimed or delayed), has completed it,
    /// or does not know it (dead-lettered, expired from the idempotency window, never
    /// enqueued). One HMGET, no script: for liveness checks over many keys.
    public func presence(ofKeys taskKeys: [String]) async throws -> [TaskPresence] {
        guard !taskKeys.isEmpty else { return [] }
        let reply = try await client.send(["HMGET", RedisArgument(keys.state)] + taskKeys.map { RedisArgument($0) })
        return (reply.array ?? []).map { value in
            switch value.bytes?.first {
            case UInt8(ascii: "q")?, UInt8(ascii: "d")?: .live
            case UInt8(ascii: "c")?: .completed
            default: .unknown
            }
        }
    }

    /// What the queue remembers about `key`.
    public func status(ofKey key: String) async throws -> TaskStatus {
        TaskStatus(code: try await client.send(command(Scripts.status, [RedisArgument(key)])).string ?? "")
    }

    // MARK: - Consuming (used by TaskConsumer; public for tools and tests)

    /// The outcome of a claim: tasks, and when none, the lane tails to block on.
    public struct ClaimBatch: Sendable {
        public let tasks: [ClaimedTask]
        public let serverTimeMs: Int64
        /// Last entry id per lane (empty when tasks were claimed): `XREAD BLOCK` from these
        /// returns as soon as anything new is added.
        public let laneTails: [String]
    }

    /// Claims up to `count` tasks for `consumer`, highest lane first with aging. Never blocks.
    ///
    /// Two round trips: a script plans how many entries to take from which lane, then one
    /// pipelined `XREADGROUP` per planned lane reads them (the plan is not binding: entries
    /// another consumer took in between are simply not returned, and the next claim plans again).
    public func claim(consumer: String, count: Int) async throws -> ClaimBatch {
        var arguments: [RedisArgument] = [RedisArgument(max(1, count))]
        for lane in [Lane.urgent, .routine, .bulk] {
            arguments.append(RedisArgument(configuration.agingCaps[lane]?.milliseconds ?? 0))
        }
        let reply = try await client.send(command(Scripts.claimPlan, arguments))
        guard let parts = reply.array, parts.count == 3, let now = parts[0].int, let plan = parts[1].array else {
            throw TaskQueueError.unexpectedReply("claim")
        }
        if plan.isEmpty {
            return ClaimBatch(tasks: [], serverTimeMs: now, laneTails: (parts[2].array ?? []).compactMap(\.string))
        }
        var lanes: [Lane] = []
        var reads: [RedisCommand] = []
        for offset in stride(from: 0, to: plan.count - 1, by: 2) {
            guard let index = plan[offset].int, let lane = Lane(index: Int(index)), let wanted = plan[offset + 1].int else {
                throw TaskQueueError.unexpectedReply("claim")
            }
            lanes.append(lane)
            reads.append(RedisCommand("XREADGROUP", "GROUP", "workers", RedisArgument(consumer), "COUNT", RedisArgument(wanted),
                                      "STREAMS", RedisArgument(keys.lane(lane)), ">"))
        }
        let maxAttempts = configuration.maxAttempts
        let laneKeys = keys.lanes
        let replies = try await client.pipeline(reads) { reply in
            LaneRead(reply, laneKeys: laneKeys, consumer: consumer, claimedAtMs: now, defaultMaxAttempts: maxAttempts)
        }
        var tasks: [ClaimedTask] = []
        tasks.reserveCapacity(count)
        for (lane, read) in zip(lanes, replies) {
            switch read {
            case .entries(let entries):
                let laneMetrics = metrics.lane(lane)
                for task in entries {
                    laneMetrics.claimed.increment()
                    laneMetrics.wait.recordMilliseconds(task.queueWait.milliseconds)
                    tasks.append(task)
                }
            // The lane was deleted after the plan (its group with it): the next plan recreates it.
            case .error(let message) where message.hasPrefix("NOGROUP"): continue
            case .error(let message): try RedisValue.error(message).throwingServerError()
            case .malformed: throw TaskQueueError.unexpectedReply("claim")
            }
        }
        return ClaimBatch(tasks: tasks, serverTimeMs: now, laneTails: [])
    }

    /// One lane's `XREADGROUP` reply, decoded in place on the connection's thread:
    /// `[[lane key, [[id, [k, key, p, payload, m, "delivery failures maxAttempts firstEnqueueMs", (g, group)]], …]]]`,
    /// or null when nothing was left to read. The lane is the one the reply names.
    enum LaneRead: Sendable {
        case entries([ClaimedTask])
        case error(String)
        case malformed

        init(_ reply: RedisReply, laneKeys: [String], consumer: String, claimedAtMs: Int64, defaultMaxAttempts: Int) {
            switch reply.kind {
            case .null: self = .entries([])
            case .error: self = .error(reply.errorMessage ?? "")
            case .array:
                guard let stream = reply[0], let name = stream[0]?.string, let position = laneKeys.firstIndex(of: name),
                      let lane = Lane(index: position + 1), let entries = stream[1], entries.kind == .array
                else { self = .malformed; return }
                var tasks: [ClaimedTask] = []
                tasks.reserveCapacity(entries.count)
                for index in 0..<entries.count {
                    guard let entry = entries[index],
                          let task = TaskQueue.claimedTask(entry, lane: lane, consumer: consumer, claimedAtMs: claimedAtMs, defaultMaxAttempts: defaultMaxAttempts)
                    else { self = .malformed; return }
                    tasks.append(task)
                }
                self = .entries(tasks)
            default: self = .malformed
            }
        }
    }

    /// A lane entry `[id, [field, value, …]]` as a claimed task, or nil.
    static func claimedTask(_ entry: RedisReply, lane: Lane, consumer: String, claimedAtMs: Int64, defaultMaxAttempts: Int) -> ClaimedTask? {
        guard entry.count == 2, let idReply = entry[0], let id = idReply.string, let fields = entry[1], fields.kind == .array else { return nil }
        var key: String?
        var payload: [UInt8] = []
        var meta: (delivery: Int64, failures: Int64, maxAttempts: Int64, firstEnqueueMs: Int64)?
        var group: String?
        var index = 0
        while index + 1 < fields.count {
            guard let name = fields[index], let value = fields[index + 1] else { return nil }
            if name.equals("k") { key = value.string }
            else if name.equals("p") { payload = value.bytes ?? [] }
            else if name.equals("m") { meta = value.withBytes(parseMeta) }
            else if name.equals("g") { group = value.string }
            index += 2
        }
        guard let key, let meta else { return nil }
        // An entry id is "<ms>-<seq>": its ms is when this delivery was appended.
        let appendedMs = idReply.withBytes { bytes in
            RedisReply.parseInteger(UnsafeRawBufferPointer(rebasing: bytes.prefix { $0 != UInt8(ascii: "-") }))
        }
        return ClaimedTask(
            key: key, payload: payload, lane: lane, consumer: consumer,
            delivery: Int(meta.delivery), failures: Int(meta.failures),
            maxAttempts: meta.maxAttempts > 0 ? Int(meta.maxAttempts) : defaultMaxAttempts,
            group: group, entryID: id, claimedAtMs: claimedAtMs, enqueuedAtMs: appendedMs ?? claimedAtMs
        )
    }

    /// "delivery failures maxAttempts firstEnqueueMs", read in place (the last may be missing).
    private static func parseMeta(_ bytes: UnsafeRawBufferPointer) -> (Int64, Int64, Int64, Int64)? {
        var numbers: (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)
        var found = 0
        var start = 0
        for end in 0...bytes.count where end == bytes.count || bytes[end] == UInt8(ascii: " ") {
            guard let value = RedisReply.parseInteger(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) else { return nil }
            switch found {
            case 0: numbers.0 = value
            case 1: numbers.1 = value
            case 2: numbers.2 = value
            case 3: numbers.3 = value
            default: return nil
            }
            found += 1
            start = end + 1
        }
        return found >= 3 ? numbers : nil
    }

    /// Completes a claimed task: ack, result, the caller's effects, fan-in, all in one
    /// script that refuses if `task.fence` is no longer current.
    @discardableResult
    public func complete(_ task: ClaimedTask, result: [UInt8]? = nil, effects: [Effect] = []) async throws -> CompletionOutcome {
        try await complete([Completion(task: task, result: result, effects: effects)])[0]
    }

    /// One task's completion for `complete(_:)` in bulk.
    public struct Completion: Sendable {
        public var task: ClaimedTask
        public var result: [UInt8]?
        public var effects: [Effect]

        public init(task: ClaimedTask, result: [UInt8]? = nil, effects: [Effect] = []) {
            self.task = task
            self.result = result
            self.effects = effects
        }
    }

    /// Completes several tasks in one script call; each is accepted or refused on its own.
    public func complete(_ completions: [Completion]) async throws -> [CompletionOutcome] {
        if completions.isEmpty { return [] }
        // Durable when the client asks replicas to acknowledge (`?wait=N`): a completion lost
        // in a failover would run the task again.
        let reply = try await client.sendDurable(try completeCommand(completions))
        return try parseCompletions(reply, completions)
    }

    /// Completion effects may only use these commands (the script checks again).
    static let effectCommands: Set<String> = ["HSET", "HSETNX", "HINCRBY", "HDEL", "SADD", "SREM", "SET", "INCRBY", "DEL",
                                              "RPUSH", "LPUSH", "ZADD", "ZINCRBY", "EXPIRE", "PEXPIRE", "XADD"]

    func validate(_ effects: [Effect]) throws {
        for effect in effects {
            guard effect.key.contains(keys.hashTag) else {
                throw TaskQueueError(code: "queue.effectKey", message: "effect keys must contain the queue's hash tag \(keys.hashTag)")
            }
            guard Self.effectCommands.contains(effect.command) else {
                throw TaskQueueError(code: "queue.effectCommand", message: "\(effect.command) is not allowed in a completion effect")
            }
        }
    }

    func completeCommand(_ completions: [Completion]) throws -> RedisCommand {
        // Result and effect keys go to KEYS after the queue's own; count them first.
        var extraKeys = 0
        var capacity = 1024
        for completion in completions {
            try validate(completion.effects)
            if let result = completion.result {
                extraKeys += 1
                capacity += result.count + 64
            }
            extraKeys += completion.effects.count
            capacity += completion.task.key.utf8.count * 2 + 96 + completion.effects.count * 128
        }
        var command = scriptCommand(Scripts.complete, extraKeys: extraKeys, capacity: capacity)
        for completion in completions {
            if completion.result != nil { command.append(keys.result(completion.task.key)) }
            for effect in completion.effects { command.append(effect.key) }
        }
        command.append(completions.count)
        command.append(Int(configuration.resultTTL.milliseconds))
        for completion in completions { command.append(completion.task.key) }
        var keyIndex = keys.scriptKeys.count
        for completion in completions {
            let task = completion.task
            command.append(task.fence)
            command.append(task.lane.index)
            command.append(task.group ?? "")
            if let result = completion.result {
                keyIndex += 1
                command.append(keyIndex)
                command.append(result)
            } else {
                command.append(0)
            }
            command.append(completion.effects.count)
            for effect in completion.effects {
                keyIndex += 1
                command.append(effect.command)
                command.append(keyIndex)
                command.append(effect.arguments.count)
                for argument in effect.arguments { command.append(argument) }
            }
        }
        return command
    }

    func parseCompletions(_ reply: RedisValue, _ completions: [Completion]) throws -> [CompletionOutcome] {
        try reply.throwingServerError()
        guard let parts = reply.array, parts.count == 2, let codes = parts[0].bytes, codes.count == completions.count else {
            throw TaskQueueError.unexpectedReply("complete")
        }
        var nextTasks: [Int: String] = [:]
        let fanIn = parts[1].array ?? []
        for offset in stride(from: 0, to: fanIn.count - 1, by: 2) {
            if let index = fanIn[offset].int, let key = fanIn[offset + 1].string { nextTasks[Int(index) - 1] = key }
        }
        return try codes.enumerated().map { index, code in
            switch code {
            case UInt8(ascii: "o"):
                metrics.lane(completions[index].task.lane).completed.increment()
                return .accepted(nextTask: nextTasks[index])
            case UInt8(ascii: "a"): return .alreadyCompleted
            case UInt8(ascii: "f"): return .refused(reason: "fenced")
            case UInt8(ascii: "u"): return .refused(reason: "unknown")
            case UInt8(ascii: "s"): return .refused(reason: "state")
            case UInt8(ascii: "e"): return .refused(reason: "effect-failed")
            case UInt8(ascii: "x"): return .refused(reason: "effect-not-allowed")
            default: throw TaskQueueError.unexpectedReply("complete")
            }
        }
    }

    /// Records a handler failure: retry after `retryAfter` (default: the configured backoff),
    /// or dead-letter when attempts are exhausted or `permanent`.
    @discardableResult
    public func fail(_ task: ClaimedTask, error: String, permanent: Bool = false, retryAfter: Duration? = nil) async throws -> FailureOutcome {
        let delay: Int64 = permanent ? -1 : (retryAfter ?? configuration.backoff(afterFailures: task.failures + 1)).milliseconds
        let reply = try await client.send(command(Scripts.fail, [
            RedisArgument(task.key), RedisArgument(task.fence), RedisArgument(String(error.prefix(2000))), RedisArgument(delay),
            RedisArgument(configuration.deadLetterMaxLength), RedisArgument(permanent ? "rejected: \(error.prefix(200))" : "failed"),
        ]))
        guard let parts = reply.array, let code = parts.first?.int else { throw TaskQueueError.unexpectedReply("fail") }
        switch code {
        case 1:
            metrics.lane(task.lane).retried.increment()
            return .retrying(dueAtMs: parts.count > 1 ? parts[1].int ?? 0 : 0)
        case 2:
            metrics.lane(task.lane).dead.increment()
            return .deadLettered
        default:
            return .refused(reason: parts.count > 1 ? parts[1].string ?? "" : "")
        }
    }

    /// Extends the leases of `tasks`; returns the keys whose lease was lost (taken over).
    public func renew(_ tasks: [ClaimedTask]) async throws -> Set<String> {
        if tasks.isEmpty { return [] }
        let byConsumer = Dictionary(grouping: tasks, by: \.consumer)
        let commands = byConsumer.map { consumer, held in
            var arguments: [RedisArgument] = [RedisArgument(consumer)]
            for task in held {
                arguments.append(RedisArgument(task.key))
                arguments.append(RedisArgument(task.fence))
                arguments.append(RedisArgument(task.lane.index))
            }
            return command(Scripts.renew, arguments)
        }
        var lost: Set<String> = []
        for reply in try await client.pipeline(commands) {
            try reply.throwingServerError()
            lost.formUnion((reply.array ?? []).compactMap(\.string))
        }
        return lost
    }

    /// Hands tasks back to their lanes at once (graceful shutdown). Returns how many.
    @discardableResult
    public func release(_ tasks: [ClaimedTask]) async throws -> Int {
        if tasks.isEmpty { return 0 }
        var arguments: [RedisArgument] = []
        for task in tasks {
            arguments.append(RedisArgument(task.key))
            arguments.append(RedisArgument(task.fence))
        }
        return Int(try await client.send(command(Scripts.release, arguments)).int ?? 0)
    }

    public struct ReclaimResult: Sendable {
        public let requeued: Int
        public let deadLettered: Int
        public let serverTimeMs: Int64
        /// Earliest lease expiry still held, nil when no lease is held.
        public let nextExpiryMs: Int64?
    }

    /// Returns tasks whose lease expired to their lanes (or dead-letters poison ones).
    public func reclaimExpired(limit: Int = 500) async throws -> ReclaimResult {
        let reply = try await client.send(command(Scripts.reclaim, [
            RedisArgument(configuration.lease.milliseconds), RedisArgument(configuration.maxDeliveries), RedisArgument(limit),
            RedisArgument(configuration.deadLetterMaxLength),
        ]))
        guard let parts = reply.array, parts.count == 4 else { throw TaskQueueError.unexpectedReply("reclaim") }
        let next = parts[3].int ?? -1
        let result = ReclaimResult(requeued: Int(parts[0].int ?? 0), deadLettered: Int(parts[1].int ?? 0),
                                   serverTimeMs: parts[2].int ?? 0, nextExpiryMs: next < 0 ? nil : next)
        if result.deadLettered > 0 { metrics.deadUnknownLane.increment(by: Int64(result.deadLettered)) }
        if result.requeued > 0 { metrics.reclaimed.increment(by: Int64(result.requeued)) }
        return result
    }

    public struct PromoteResult: Sendable {
        public let promoted: Int
        public let serverTimeMs: Int64
        public let nextDueMs: Int64?
    }

    /// Moves retries that are due back to their lanes.
    public func promoteDue(limit: Int = 500) async throws -> PromoteResult {
        let reply = try await client.send(command(Scripts.promote, [RedisArgument(limit)]))
        guard let parts = reply.array, parts.count == 3 else { throw TaskQueueError.unexpectedReply("promote") }
        let next = parts[2].int ?? -1
        return PromoteResult(promoted: Int(parts[0].int ?? 0), serverTimeMs: parts[1].int ?? 0, nextDueMs: next < 0 ? nil : next)
    }

    /// Prunes expired tombstones, stale groups, old dead letters and departed consumers.
    public func housekeeping(limit: Int = 1000) async throws {
        try await client.send(command(Scripts.housekeeping, [
            RedisArgument(configuration.completedRetention.milliseconds), RedisArgument(configuration.groupTTL.milliseconds),
            RedisArgument(configuration.deadLetterRetention.milliseconds), RedisArgument(configuration.consumerIdleRemoval.milliseconds),
            RedisArgument(limit),
        ]))
    }

    /// Removes `consumer` from the group of every lane where it holds nothing. Best effort
    /// (housekeeping removes departed consumers later anyway), but failures are logged.
    func removeConsumer(_ consumer: String) async {
        for lane in keys.lanes {
            do {
                let pending = try await client.send("XPENDING", RedisArgument(lane), "workers", "-", "+", "1", RedisArgument(consumer))
                if pending.array?.isEmpty == true {
                    try await client.send("XGROUP", "DELCONSUMER", RedisArgument(lane), "workers", RedisArgument(consumer))
                }
            } catch where error.isServerError("NOGROUP") {
                continue  // A lane that never had work has no group, so no consumer to remove.
            } catch {
                logger.warning("could not remove consumer from lane", metadata: ["lane": "\(lane)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Dead letters

    /// Dead letters oldest first, starting after `after` (an entry id).
    public func deadLetters(count: Int = 100, after: String? = nil) async throws -> [DeadLetter] {
        let start = after.map { "(" + $0 } ?? "-"
        let reply = try await client.send("XRANGE", RedisArgument(keys.dead), RedisArgument(start), "+", "COUNT", RedisArgument(count))
        return (reply.array ?? []).compactMap { RedisValueEntry($0).flatMap(DeadLetter.init(entry:)) }
    }

    public func deadLetter(id: String) async throws -> DeadLetter? {
        let reply = try await client.send("XRANGE", RedisArgument(keys.dead), RedisArgument(id), RedisArgument(id))
        return reply.array?.first.flatMap { RedisValueEntry($0).flatMap(DeadLetter.init(entry:)) }
    }

    /// Re-enqueues a dead letter with fresh attempt counters and removes it from the stream.
    /// nil when no such entry exists.
    public func retryDeadLetter(id: String) async throws -> EnqueueResult? {
        let reply = try await client.send(command(Scripts.retryDead, [RedisArgument(id)]))
        guard let parts = reply.array, parts.count == 2 else { throw TaskQueueError.unexpectedReply("retry") }
        if parts[0].int == -2 { return nil }
        // The script's single-task enqueue answers {1, entry id}, {0, status} or {-1, 'nogroup'}.
        switch parts[0].int {
        case 1: return .enqueued(entryID: parts[1].string ?? "")
        case 0: return .duplicate(TaskStatus(code: parts[1].string ?? ""))
        case -1: throw TaskQueueError(code: "queue.unknownGroup", message: "the dead letter's fan-in group no longer exists")
        default: throw TaskQueueError.unexpectedReply("retry")
        }
    }

    /// Deletes the given dead letters; returns how many existed.
    @discardableResult
    public func purgeDeadLetters(ids: [String]) async throws -> Int {
        if ids.isEmpty { return 0 }
        return Int(try await client.send(["XDEL", RedisArgument(keys.dead)] + ids.map { RedisArgument($0) }).int ?? 0)
    }

    /// Deletes every dead letter; returns how many there were.
    @discardableResult
    public func purgeAllDeadLetters() async throws -> Int {
        let replies = try await client.pipeline([RedisCommand("XLEN", RedisArgument(keys.dead)), RedisCommand("DEL", RedisArgument(keys.dead))])
        return Int(replies[0].int ?? 0)
    }

    // MARK: - Stats

    public func stats() async throws -> QueueStats {
        var commands: [RedisCommand] = []
        for lane in Lane.allCases {
            commands.append(RedisCommand("XLEN", RedisArgument(keys.lane(lane))))
            commands.append(RedisCommand("XINFO", "GROUPS", RedisArgument(keys.lane(lane))))
            commands.append(RedisCommand("ZCARD", RedisArgument(keys.delayed(lane))))
        }
        commands.append(RedisCommand("XLEN", RedisArgument(keys.dead)))
        commands.append(RedisCommand("HLEN", RedisArgument(keys.groups)))
        commands.append(RedisCommand("TIME"))
        let replies = try await client.pipeline(commands)
        let time = replies[14].array ?? []
        let now = (time.first?.int ?? 0) * 1000 + (time.count > 1 ? (time[1].int ?? 0) / 1000 : 0)

        // Dead letters per lane: scan the (capped) dead-letter stream.
        var deadPerLane: [String: Int] = [:]
        let deadTotal = Int(replies[12].int ?? 0)
        if deadTotal > 0 {
            let entries = try await client.send("XRANGE", RedisArgument(keys.dead), "-", "+", "COUNT", RedisArgument(min(deadTotal, 100_000)))
            for entry in entries.array ?? [] {
                if let lane = RedisValueEntry(entry)?.fields["lane"]?.string { deadPerLane[lane, default: 0] += 1 }
            }
        }
        var lanes: [LaneStats] = []
        var leases = 0
        for (offset, lane) in Lane.allCases.enumerated() {
            // Acknowledged entries stay in a lane until its head is trimmed, so the waiting
            // count is the group's lag (entries not yet delivered), not length minus pending.
            let length = Int(replies[offset * 3].int ?? 0)
            var pending = 0
            var waiting = length
            var lastDelivered = "0-0"
            for group in replies[offset * 3 + 1].array ?? [] {
                let fields = group.fieldMap ?? [:]
                if fields["name"]?.string == "workers" {
                    pending = Int(fields["pending"]?.int ?? 0)
                    lastDelivered = fields["last-delivered-id"]?.string ?? "0-0"
                    if let lag = fields["lag"]?.int { waiting = Int(lag) } else { waiting = try await countAfter(lane, lastDelivered) }
                }
            }
            leases += pending
            var oldest: Int64 = 0
            if waiting > 0 {
                let head = try await client.send("XRANGE", RedisArgument(keys.lane(lane)), RedisArgument("(" + lastDelivered), "+", "COUNT", "1")
                if let id = head.array?.first?.array?.first?.string, let ms = Int64(id.split(separator: "-").first ?? "") {
                    oldest = max(0, now - ms)
                }
            }
            lanes.append(LaneStats(lane: lane.rawValue, depth: waiting, pending: pending, oldestAgeMs: oldest,
                                   delayed: Int(replies[offset * 3 + 2].int ?? 0), deadLetters: deadPerLane[lane.rawValue] ?? 0))
        }
        return QueueStats(queue: name, lanes: lanes, deadLetters: deadTotal, leases: leases, openGroups: Int(replies[13].int ?? 0))
    }

    /// Entries after `id` in `lane` (when Redis cannot give the group's lag), counted up to 100,000.
    private func countAfter(_ lane: Lane, _ id: String) async throws -> Int {
        let reply = try await client.send("XRANGE", RedisArgument(keys.lane(lane)), RedisArgument("(" + id), "+", "COUNT", "100000")
        return reply.array?.count ?? 0
    }
}

/// swift-metrics handles of one queue, per lane.
struct QueueMetrics: Sendable {
    struct PerLane: Sendable {
        let enqueued, claimed, completed, retried, dead: Counter
        let wait, run: Metrics.Timer
    }

    private let lanes: [PerLane]
    let reclaimed: Counter
    let deadUnknownLane: Counter

    init(queue: String) {
        lanes = Lane.allCases.map { lane in
            let dimensions = [("queue", queue), ("lane", lane.rawValue)]
            return PerLane(
                enqueued: Counter(label: "radgrid_queue_enqueued_total", dimensions: dimensions),
                claimed: Counter(label: "radgrid_queue_claimed_total", dimensions: dimensions),
                completed: Counter(label: "radgrid_queue_completed_total", dimensions: dimensions),
                retried: Counter(label: "radgrid_queue_retried_total", dimensions: dimensions),
                dead: Counter(label: "radgrid_queue_dead_total", dimensions: dimensions),
                wait: Metrics.Timer(label: "radgrid_queue_wait", dimensions: dimensions),
                run: Metrics.Timer(label: "radgrid_queue_run", dimensions: dimensions)
            )
        }
        reclaimed = Counter(label: "radgrid_queue_reclaimed_total", dimensions: [("queue", queue)])
        deadUnknownLane = Counter(label: "radgrid_queue_dead_total", dimensions: [("queue", queue), ("lane", "poison")])
    }

    func lane(_ lane: Lane) -> PerLane { lanes[lane.index - 1] }
}
