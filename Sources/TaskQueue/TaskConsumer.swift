import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs a handler over a queue with `concurrency` slots: claims (blocking, batched), renews
/// leases, completes or fails each task, and keeps the queue healthy (reclaims expired leases,
/// promotes due retries, prunes). A `Service`: on graceful shutdown it stops claiming,
/// lets in-flight work finish until `shutdownGrace`, then hands the rest back at once.
///
/// Structure: every handler, the claim loops, the lease renewer and the maintenance loops are
/// child tasks of `run()`'s task groups, so nothing outlives the service. A handler whose lease
/// was lost is told through `TaskContext.isLeaseLost` (its completion will be refused); the
/// handlers still running when the grace ends are cancelled together after the hand-back.
public final class TaskConsumer: Service, Sendable {
    public typealias Handler = @Sendable (TaskContext) async throws -> Void

    public struct Configuration: Sendable {
        /// Handlers run at once in this process. A task whose handler has finished waits for its
        /// completion outside this count (at most `concurrency` such tasks), so the next claim
        /// overlaps the completion's round trip instead of waiting for it.
        public var concurrency: Int
        /// Most tasks taken by one claim.
        public var batchSize: Int
        /// Claims under way at once, each for its own share of the free slots: a second claim
        /// overlaps the round trips of the first (each blocks on its own connection when idle).
        public var parallelClaims: Int
        /// Longest single blocking read while the queue is empty (re-issued after).
        public var blockTimeout: Duration
        /// How long in-flight tasks may run on after shutdown begins before being handed back.
        public var shutdownGrace: Duration
        /// Unique name of this consumer in the lanes' consumer group.
        public var consumerName: String
        /// Run lease reclaiming, retry promotion and housekeeping in this process.
        public var maintenance: Bool
        public var housekeepingInterval: Duration
        /// Called after each claim with its round-trip time and the number of tasks (benchmarks, diagnostics).
        public var claimObserver: (@Sendable (Duration, Int) -> Void)?

        public init(
            concurrency: Int = 8,
            batchSize: Int = 32,
            parallelClaims: Int = 2,
            blockTimeout: Duration = .seconds(5),
            shutdownGrace: Duration = .seconds(20),
            consumerName: String = TaskConsumer.defaultConsumerName(),
            maintenance: Bool = true,
            housekeepingInterval: Duration = .seconds(60),
            claimObserver: (@Sendable (Duration, Int) -> Void)? = nil
        ) {
            self.concurrency = max(1, concurrency)
            self.batchSize = max(1, batchSize)
            self.parallelClaims = max(1, parallelClaims)
            self.blockTimeout = blockTimeout
            self.shutdownGrace = shutdownGrace
            self.consumerName = consumerName
            self.maintenance = maintenance
            self.housekeepingInterval = housekeepingInterval
            self.claimObserver = claimObserver
        }
    }

    /// The queues served: one, or the shards of a `ShardedTaskQueue`.
    public let queues: [TaskQueue]
    /// The first (or only) queue.
    public var queue: TaskQueue { queues[0] }
    public let configuration: Configuration
    private let handler: Handler
    private let logger: Logger
    private let state = Mutex(State())
    /// One per claim loop (a `Wakeup` has one waiter); a freed slot wakes them all.
    private let slotFreed: [Wakeup]
    /// One per queue (a `Wakeup` has one waiter: that queue's promoter loop).
    private let promoterWakes: [Wakeup]
    /// Signalled when the last held task is settled (the drain waits on it).
    private let drained = Wakeup()

    private struct State {
        /// Every task this consumer holds a lease on: running, or finished and being completed.
        var inFlight: [String: TaskContext] = [:]
        /// Handlers running now; `inFlight.count - running` are being completed.
        var running = 0
        /// Slots set aside by claims under way.
        var reserved = 0
        var stopRequested = false
        /// The claim loops' blocking connections, closed to end a blocking read at once on stop.
        var claimConnections: [RedisDedicatedConnection] = []
        var handingBack = false
        /// Cancelled outright (not a graceful shutdown): no drain.
        var hardCancelled = false
        /// Completions that need more than the batcher's answer (refused, failed): settled by
        /// the settler child task.
        var settleSink: AsyncStream<(TaskContext, TaskQueue.Completion, Result<CompletionOutcome, any Error>)>.Continuation?
    }

    public convenience init(queue: TaskQueue, configuration: Configuration = Configuration(), handler: @escaping Handler) {
        self.init(queues: [queue], configuration: configuration, handler: handler)
    }

    /// A consumer over several queues (the shards of a `ShardedTaskQueue`): its slots are
    /// shared, each shard has `parallelClaims` claim loops of its own (blocking on that
    /// shard's node), and leases, retries and maintenance go to the shard a task came from.
    public init(queues: [TaskQueue], configuration: Configuration = Configuration(), handler: @escaping Handler) {
        precondition(!queues.isEmpty, "a consumer needs a queue")
        self.queues = queues
        self.configuration = configuration
        self.handler = handler
        self.slotFreed = (0..<(configuration.parallelClaims * queues.count)).map { _ in Wakeup() }
        self.promoterWakes = queues.map { _ in Wakeup() }
        let queue = queues[0]
        var logger = queue.logger
        logger[metadataKey: "consumer"] = "\(configuration.consumerName)"
        self.logger = logger
    }

    public static func defaultConsumerName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host)-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// Tasks this consumer holds: running, or finished and being completed.
    public var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    /// Sets aside up to `limit` free slots for a claim: slots whose handler is not running
    /// and not reserved by another claim, as long as completions keep up.
    private func reserveSlots(upTo limit: Int) -> Int {
        state.withLock { state in
            let completing = state.inFlight.count - state.running
            let free = configuration.concurrency - state.running - state.reserved
            guard completing < configuration.concurrency, free > 0 else { return 0 }
            let count = min(limit, free)
            state.reserved += count
            return count
        }
    }

    /// Begins a graceful shutdown without a ServiceGroup (tests, tools): same as SIGTERM.
    public func shutdown() { stopClaiming() }

    /// No new claims: flags the stop, wakes idle claim loops and ends blocking reads.
    private func stopClaiming() {
        let connections = state.withLock { state -> [RedisDedicatedConnection] in
            state.stopRequested = true
            return state.claimConnections
        }
        for connection in connections { connection.abort() }
        signalSlotFreed()
    }

    private var stopRequested: Bool { state.withLock { $0.stopRequested } }
    private var hardCancelled: Bool { state.withLock { $0.hardCancelled } }

    /// A child task threw this after the hand-back: the group cancels the handlers still running.
    private struct HandedBack: Error {}

    // MARK: - Service

    public func run() async throws {
        // hiredis writes with write(2): a write racing a Redis restart would raise SIGPIPE and
        // kill the process. A consumer must survive restarts, so the signal is ignored
        // (the write then fails with EPIPE and the client reconnects).
        signal(SIGPIPE, SIG_IGN)
        logger.info("consumer started", metadata: ["concurrency": "\(configuration.concurrency)"])
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { background in
                    background.addTask { await self.renewLoop() }
                    if configuration.maintenance {
                        for queue in queues {
                            background.addTask { await self.reaperLoop(queue) }
                            background.addTask { await self.promoterLoop(queue) }
                            background.addTask { await self.housekeepingLoop(queue) }
                        }
                    }
                    await runHandlers()
                    background.cancelAll()
                }
            } onCancel: {
                self.state.withLock { $0.hardCancelled = true }
                self.stopClaiming()
            }
        } onGracefulShutdown: {
            self.stopClaiming()
        }
        for queue in queues { await queue.removeConsumer(configuration.consumerName) }
        logger.info("consumer stopped")
    }

    /// Claims and runs handlers until stopped, then drains: in-flight tasks may finish until
    /// `shutdownGrace` (none when cancelled outright); the rest are handed back.
    private func runHandlers() async {
        let (claimed, claimedSink) = AsyncStream.makeStream(of: TaskContext.self)
        let (settles, settleSink) = AsyncStream.makeStream(of: (TaskContext, TaskQueue.Completion, Result<CompletionOutcome, any Error>).self)
        state.withLock { $0.settleSink = settleSink }
        do {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    await withDiscardingTaskGroup { claimers in
                        for index in 0..<self.slotFreed.count {
                            let queue = self.queues[index % self.queues.count]
                            claimers.addTask { await self.claimLoop(queue, wakeup: self.slotFreed[index], sink: claimedSink) }
                        }
                    }
                    claimedSink.finish()
                }
                group.addTask {
                    for await (context, completion, first) in settles {
                        await self.settle(context, completion, first: first)
                        self.forget(context.task)
                    }
                }
                for await context in claimed {
                    group.addTask { await self.execute(context) }
                }
                // Claiming has stopped: drain, then hand back what is left.
                group.addTask {
                    let grace = self.hardCancelled ? Duration.zero : self.configuration.shutdownGrace
                    let deadline = ContinuousClock.now + grace
                    while self.inFlightCount > 0 && ContinuousClock.now < deadline && !self.hardCancelled {
                        await self.drained.wait(timeout: min(.milliseconds(200), deadline - ContinuousClock.now))
                    }
                    let leftOver = await self.handBack()
                    settleSink.finish()
                    if leftOver { throw HandedBack() }
                }
            }
        } catch {
            // HandedBack: the handlers still running were cancelled with the group.
        }
    }

    /// Returns every unfinished task to its lane at once; true when there were any (their
    /// handlers are then cancelled).
    private func handBack() async -> Bool {
        let remaining = state.withLock { state -> [TaskContext] in
            state.handingBack = true
            return Array(state.inFlight.values)
        }
        guard !remaining.isEmpty else { return false }
        for (queue, contexts) in Self.byQueue(remaining) {
            var attempts = 0
            while true {
                do {
                    let count = try await queue.release(contexts.map(\.task))
                    logger.info("handed back unfinished tasks", metadata: ["count": "\(count)", "queue": "\(queue.name)"])
                    break
                } catch {
                    attempts += 1
                    // Without the hand-back the tasks still come back when their leases expire.
                    if attempts >= 3 {
                        logger.warning("hand-back failed; leases will expire instead", metadata: ["error": "\(error)"])
                        break
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        }
        for context in remaining { context.markLeaseLost() }
        return true
    }

    // MARK: - Claiming

    private func signalSlotFreed() {
        for wakeup in slotFreed { wakeup.signal() }
    }

    /// Tasks grouped by the queue (shard) that holds them.
    private static func byQueue(_ contexts: [TaskContext]) -> [(TaskQueue, [TaskContext])] {
        var groups: [ObjectIdentifier: (TaskQueue, [TaskContext])] = [:]
        for context in contexts { groups[ObjectIdentifier(context.queue), default: (context.queue, [])].1.append(context) }
        return Array(groups.values)
    }

    private func claimLoop(_ queue: TaskQueue, wakeup: Wakeup, sink: AsyncStream<TaskContext>.Continuation) async {
        let blocking = queue.client.dedicatedConnection(name: "radgrid-queue-claim")
        let stopped = state.withLock { state -> Bool in
            state.claimConnections.append(blocking)
            return state.stopRequested
        }
        defer { blocking.close() }
        var failures = 0
        while !stopped && !Task.isCancelled && !stopRequested {
            let slots = reserveSlots(upTo: configuration.batchSize)
            if slots <= 0 {
                await wakeup.wait(timeout: .seconds(1))
                continue
            }
            do {
                let started = WallClock.monotonicNanoseconds()
                let batch: TaskQueue.ClaimBatch
                do {
                    defer { state.withLock { $0.reserved -= slots } }
                    batch = try await queue.claim(consumer: configuration.consumerName, count: slots)
                    for task in batch.tasks { sink.yield(start(task, from: queue)) }
                }
                configuration.claimObserver?(.nanoseconds(Int64(WallClock.monotonicNanoseconds() - started)), batch.tasks.count)
                failures = 0
                if batch.tasks.isEmpty {
                    signalSlotFreed()  // The reservation is back: another claimer may use it.
                    try await waitForWork(queue, on: blocking, tails: batch.laneTails)
                    continue
                }
            } catch {
                if Task.isCancelled || stopRequested { break }
                failures += 1
                logger.warning("claim failed; retrying", metadata: ["error": "\(error)", "failures": "\(failures)"])
                try? await Task.sleep(for: Self.retryDelay(failures))
            }
        }
    }

    /// Blocks until any lane gets an entry newer than `tails` (or the block time passes).
    /// Reads without a group, so nothing is consumed: the next claim takes the work.
    private func waitForWork(_ queue: TaskQueue, on connection: RedisDedicatedConnection, tails: [String]) async throws {
        guard tails.count == 4 else { return }
        var arguments: [RedisArgument] = ["XREAD", "COUNT", "1", "BLOCK", RedisArgument(configuration.blockTimeout.milliseconds), "STREAMS"]
        arguments += queue.keys.lanes.map { RedisArgument($0) }
        arguments += tails.map { RedisArgument($0) }
        try await connection.send(arguments, blockingFor: configuration.blockTimeout)
    }

    static func retryDelay(_ failures: Int) -> Duration {
        let base = min(2_000, 50 * (1 << min(failures, 6)))
        return .milliseconds(Int64(Double(base) * Double.random(in: 0.5...1.0)))
    }

    /// Records a claimed task as held and running; its handler starts as a child task.
    private func start(_ task: ClaimedTask, from queue: TaskQueue) -> TaskContext {
        let context = TaskContext(task: task, queue: queue)
        state.withLock { state in
            state.inFlight[task.key] = context
            state.running += 1
        }
        return context
    }

    private func execute(_ context: TaskContext) async {
        let task = context.task
        let queue = context.queue
        let started = WallClock.monotonicNanoseconds()
        do {
            try await handler(context)
            queue.metrics.lane(task.lane).run.recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started))
            handlerFinished()
            if context.isLeaseLost { return forget(task) }
            // The completion is handed to the batcher; this task ends here, and the batcher's
            // reply settles it (no per-task wake-up on the common path).
            let completion = TaskQueue.Completion(task: task, result: context.result, effects: context.effects)
            queue.completions.submit(completion, on: queue) { result in
                switch result {
                case .success(.accepted), .success(.alreadyCompleted):
                    self.forget(task)
                default:
                    // Rare: handed to the settler child task (retries, refusals, effect failures).
                    let sink = self.state.withLock { $0.settleSink }
                    if case .enqueued? = sink?.yield((context, completion, result)) { return }
                    self.forget(task)
                }
            }
        } catch {
            queue.metrics.lane(task.lane).run.recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started))
            handlerFinished()
            if !(context.isLeaseLost || state.withLock({ $0.handingBack })) {
                await failRetrying(context, error: error)
            }
            forget(task)
        }
    }

    /// The handler returned: its slot may be claimed again while its completion is under way.
    private func handlerFinished() {
        state.withLock { $0.running -= 1 }
        signalSlotFreed()
    }

    /// The task is settled (completed, failed, refused or lost): this consumer no longer holds it.
    /// (Not a hand-back: that is `TaskQueue.release`.)
    private func forget(_ task: ClaimedTask) {
        let empty = state.withLock { state -> Bool in
            state.inFlight.removeValue(forKey: task.key)
            return state.inFlight.isEmpty
        }
        signalSlotFreed()
        if empty { drained.signal() }
    }

    /// A completion that was not simply accepted: a refusal, or an error to retry or record.
    private func settle(_ context: TaskContext, _ completion: TaskQueue.Completion, first: Result<CompletionOutcome, any Error>) async {
        var outcome: CompletionOutcome?
        switch first {
        case .success(let value): outcome = value
        case .failure(let error): outcome = await completeRetrying(context, completion, after: error)
        }
        guard case .refused(let reason)? = outcome else { return }
        if reason.hasPrefix("effect") {
            // The task's own effects failed (e.g. WRONGTYPE): nothing was completed.
            await failRetrying(context, error: TaskQueueError(code: "queue.effectFailed", message: "a completion effect failed (\(reason))"))
        } else {
            logger.warning("completion refused: lease was taken over", metadata: ["reason": "\(reason)", "delivery": "\(context.task.delivery)"])
        }
    }

    /// Completion is idempotent for one claim (a retry after a lost reply answers
    /// `alreadyCompleted`), so transport failures are retried for up to one lease.
    private func completeRetrying(_ context: TaskContext, _ completion: TaskQueue.Completion, after firstError: any Error) async -> CompletionOutcome? {
        let queue = context.queue
        let clock = ContinuousClock()
        let giveUp = clock.now + queue.configuration.lease
        var failures = 0
        var error = firstError
        while true {
            switch error {
            case let failure as RedisError where failure.isConnectionFailure && clock.now < giveUp && !context.isLeaseLost:
                failures += 1
                try? await Task.sleep(for: Self.retryDelay(failures))
            case let failure as TaskQueueError:
                // Effects that can never apply (outside the queue's slot, command not allowed).
                await failRetrying(context, error: TaskFailure.permanent(failure.description))
                return nil
            default:
                logger.error("completion failed; the task will be reclaimed when its lease expires", metadata: ["error": "\(error)"])
                return nil
            }
            do {
                return try await queue.completions.complete(completion, on: queue)
            } catch let next {
                error = next
            }
        }
    }

    private func failRetrying(_ context: TaskContext, error: any Error) async {
        var permanent = false
        var retryAfter: Duration?
        let message: String
        switch error {
        case TaskFailure.permanent(let reason):
            permanent = true
            message = reason
        case TaskFailure.retry(let after, let reason):
            retryAfter = after
            message = reason
        default:
            message = String(describing: error)
        }
        let queue = context.queue
        let clock = ContinuousClock()
        let giveUp = clock.now + queue.configuration.lease
        var failures = 0
        while true {
            do {
                let outcome = try await queue.fail(context.task, error: message, permanent: permanent, retryAfter: retryAfter)
                switch outcome {
                case .retrying: promoterWake(for: queue).signal()
                case .deadLettered: logger.warning("task dead-lettered", metadata: ["error": "\(message)", "delivery": "\(context.task.delivery)"])
                case .refused: break
                }
                return
            } catch let error as RedisError where error.isConnectionFailure && clock.now < giveUp {
                failures += 1
                try? await Task.sleep(for: Self.retryDelay(failures))
            } catch {
                logger.error("recording a failure failed; the task will be reclaimed when its lease expires", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    // MARK: - Leases

    private func renewLoop() async {
        let interval = queue.configuration.lease / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            let held = state.withLock { Array($0.inFlight.values) }
            if held.isEmpty { continue }
            for (queue, contexts) in Self.byQueue(held) {
                do {
                    let lost = try await queue.renew(contexts.map(\.task))
                    if !lost.isEmpty {
                        let contexts = state.withLock { state in lost.compactMap { state.inFlight[$0] } }
                        // The handlers learn it from `isLeaseLost`; their completions will be refused.
                        for context in contexts { context.markLeaseLost() }
                        if !contexts.isEmpty { logger.warning("leases lost", metadata: ["count": "\(contexts.count)"]) }
                    }
                } catch {
                    logger.warning("lease renewal failed", metadata: ["error": "\(error)", "queue": "\(queue.name)"])
                }
            }
        }
    }

    // MARK: - Maintenance

    private func reaperLoop(_ queue: TaskQueue) async {
        let lease = queue.configuration.lease
        var failures = 0
        while !Task.isCancelled {
            var delay = lease
            do {
                let result = try await queue.reclaimExpired()
                failures = 0
                if result.requeued + result.deadLettered > 0 {
                    logger.info("reclaimed tasks with expired leases", metadata: ["requeued": "\(result.requeued)", "dead": "\(result.deadLettered)"])
                }
                if result.requeued + result.deadLettered >= 500 { continue }
                if let next = result.nextExpiryMs {
                    delay = .milliseconds(min(max(next - result.serverTimeMs + 10, 10), lease.milliseconds))
                }
            } catch {
                failures += 1
                delay = Self.retryDelay(failures)
            }
            try? await Task.sleep(for: delay)
        }
    }

    private func promoterWake(for queue: TaskQueue) -> Wakeup {
        promoterWakes[queues.firstIndex { $0 === queue } ?? 0]
    }

    private func promoterLoop(_ queue: TaskQueue) async {
        let maxSleep = Duration.seconds(5)
        var failures = 0
        while !Task.isCancelled {
            var delay = maxSleep
            do {
                let result = try await queue.promoteDue()
                failures = 0
                if result.promoted >= 500 { continue }
                if let next = result.nextDueMs {
                    delay = .milliseconds(min(max(next - result.serverTimeMs, 1), maxSleep.milliseconds))
                }
            } catch {
                failures += 1
                delay = Self.retryDelay(failures)
            }
            // Woken early when this process schedules a retry that may be due sooner.
            await promoterWake(for: queue).wait(timeout: delay)
        }
    }

    private func housekeepingLoop(_ queue: TaskQueue) async {
        while !Task.isCancelled {
            do {
                try await queue.housekeeping()
            } catch {
                logger.debug("housekeeping failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.housekeepingInterval)
        }
    }
}
