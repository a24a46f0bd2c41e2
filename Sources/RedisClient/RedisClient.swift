import Logging
import Metrics
import RadGridCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A Redis client over hiredis: `Sendable`, safe to share between many tasks.
///
/// Commands run on a small pool of connections, each with its own thread, so hiredis's
/// blocking I/O never occupies Swift's cooperative pool. Blocking commands (XREADGROUP
/// BLOCK, BZPOPMIN) belong on a `RedisDedicatedConnection` so they never hold a pool slot.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    private let epoch = ConnectionEpoch()
    private let pool: Mutex<PoolState>
    private let metrics: RedisMetrics

    private struct PoolState: ~Copyable {
        var idle: [ConnectionWorker] = []
        var created = 0
        var waiters: [CheckedContinuation<ConnectionWorker?, Never>] = []
        var all: [ConnectionWorker] = []
        var closed = false
    }

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "radgrid.redis")) {
        ignoreSIGPIPE
        self.configuration = configuration
        self.logger = logger
        self.pool = Mutex(PoolState())
        self.metrics = RedisMetrics()
    }

    /// `RedisClient(url: "redis://user:pass@host:6379/0")`.
    public convenience init(url: String, logger: Logger = Logger(label: "radgrid.redis")) throws(RedisError) {
        self.init(configuration: try RedisConfiguration(url: url), logger: logger)
    }

    deinit { shutdown() }

    // MARK: - Commands

    /// Sends one command; an error reply throws `RedisError` with code `redis.server`.
    @discardableResult
    public func send(_ arguments: RedisArgument...) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    @discardableResult
    public func send(_ arguments: [RedisArgument]) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    @discardableResult
    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        let replies = try await pipeline([command])
        return try replies[0].throwingServerError()
    }

    /// Sends all commands in one write and reads all replies: one round trip.
    /// Error replies come back as `.error` values in their place; script commands whose
    /// script the server does not know are loaded and replayed once.
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisValue] {
        try await pipeline(commands, decode: \.value)
    }

    /// Like `pipeline(_:)`, but each reply is decoded by `decode` in place, on the connection's
    /// thread, before it is freed: for hot paths that read large replies into their own types
    /// without building `RedisValue`s first. `decode` must not block or keep the reply.
    public func pipeline<Output: Sendable>(_ commands: [RedisCommand], decode: @escaping @Sendable (RedisReply) -> Output) async throws(RedisError) -> [Output] {
        if commands.isEmpty { return [] }
        let worker = try await acquire()
        defer { release(worker) }
        return try await Self.execute(commands, on: worker, timeout: configuration.commandTimeout, metrics: metrics, decode: decode)
    }

    /// Runs a Lua script by SHA (EVALSHA), loading it on NOSCRIPT.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []) async throws(RedisError) -> RedisValue {
        try await send(.script(script, keys: keys, arguments: arguments))
    }

    /// A connection of its own for blocking commands; close it when done.
    public func dedicatedConnection(name: String = "radgrid-redis-dedicated") -> RedisDedicatedConnection {
        RedisDedicatedConnection(
            worker: ConnectionWorker(name: name, configuration: configuration, logger: logger, epoch: epoch),
            configuration: configuration, metrics: metrics
        )
    }

    /// Closes every connection; later calls fail with `redis.closed`.
    public func shutdown() {
        let (workers, waiters) = pool.withLock { state -> ([ConnectionWorker], [CheckedContinuation<ConnectionWorker?, Never>]) in
            state.closed = true
            let result = (state.all, state.waiters)
            state.all = []
            state.idle = []
            state.waiters = []
            return result
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        for worker in workers { worker.stop() }
    }

    // MARK: - Pool

    private func acquire() async throws(RedisError) -> ConnectionWorker {
        enum Decision { case use(ConnectionWorker), create(Int), wait, closed }
        let decision = pool.withLock { state -> Decision in
            if state.closed { return .closed }
            if let worker = state.idle.popLast() { return .use(worker) }
            if state.created < configuration.poolSize {
                state.created += 1
                return .create(state.created)
            }
            return .wait
        }
        switch decision {
        case .use(let worker): return worker
        case .closed: throw RedisError(.closed, "the Redis client was shut down")
        case .create(let number):
            let worker = ConnectionWorker(name: "radgrid-redis-\(number)", configuration: configuration, logger: logger, epoch: epoch)
            let closed = pool.withLock { state in
                if !state.closed { state.all.append(worker) }
                return state.closed
            }
            if closed {
                worker.stop()
                throw RedisError(.closed, "the Redis client was shut down")
            }
            return worker
        case .wait:
            let worker: ConnectionWorker? = await withCheckedContinuation { continuation in
                let immediate = pool.withLock { state -> ConnectionWorker?? in
                    if state.closed { return .some(nil) }
                    if let worker = state.idle.popLast() { return .some(worker) }
                    state.waiters.append(continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            guard let worker else { throw RedisError(.closed, "the Redis client was shut down") }
            return worker
        }
    }

    private func release(_ worker: ConnectionWorker) {
        let waiter = pool.withLock { state -> CheckedContinuation<ConnectionWorker?, Never>? in
            if state.closed { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(worker)
            return nil
        }
        waiter?.resume(returning: worker)
    }

    // MARK: - Shared execution path

    static func execute<Output: Sendable>(_ commands: [RedisCommand], on worker: ConnectionWorker, timeout: Duration, metrics: RedisMetrics,
                                          operation: UInt64 = 0, decode: @escaping @Sendable (RedisReply) -> Output) async throws(RedisError) -> [Output] {
        let started = WallClock.monotonicNanoseconds()
        var replies: [Output?]
        do {
            replies = try await worker.execute(commands, timeout: timeout, operation: operation, decode: decode)
        } catch {
            metrics.errors(error.code).increment()
            throw error
        }
        metrics.roundTrip.recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started))
        metrics.commands.increment(by: Int64(commands.count))

        // Replay script calls the server did not know (first use, restart, SCRIPT FLUSH).
        // A flush can land between our LOAD and the replay, so try a few times.
        for _ in 0..<3 {
            let missing = replies.indices.filter { replies[$0] == nil }
            if missing.isEmpty { break }
            var seen = Set<String>()
            var loads: [RedisCommand] = []
            for index in missing {
                let script = commands[index].script!
                if seen.insert(script.sha1).inserted { loads.append(RedisCommand("SCRIPT", "LOAD", RedisArgument(script.source))) }
            }
            let loaded = try await worker.execute(loads, timeout: timeout, decode: \.value)
            for reply in loaded { try reply?.throwingServerError() }
            let retried = try await worker.execute(missing.map { commands[$0] }, timeout: timeout, decode: decode)
            for (offset, index) in missing.enumerated() { replies[index] = retried[offset] }
        }
        var result: [Output] = []
        result.reserveCapacity(replies.count)
        for reply in replies {
            guard let reply else { throw RedisError.server("NOSCRIPT the script could not be loaded") }
            result.append(reply)
        }
        return result
    }
}

/// A connection reserved for one long-running consumer (blocking reads), with its own
/// thread. Cancelling the calling task interrupts a blocked read.
public final class RedisDedicatedConnection: Sendable {
    private let worker: ConnectionWorker
    private let configuration: RedisConfiguration
    private let metrics: RedisMetrics

    init(worker: ConnectionWorker, configuration: RedisConfiguration, metrics: RedisMetrics) {
        self.worker = worker
        self.configuration = configuration
        self.metrics = metrics
    }

    deinit { worker.stop() }

    /// Sends one command. For a blocking command pass its block time as `blockingFor`, so the
    /// socket timeout covers it.
    @discardableResult
    public func send(_ arguments: [RedisArgument], blockingFor: Duration = .zero) async throws(RedisError) -> RedisValue {
        let replies = try await pipeline([RedisCommand(arguments)], blockingFor: blockingFor)
        return try replies[0].throwingServerError()
    }

    @discardableResult
    public func send(_ arguments: RedisArgument..., blockingFor: Duration = .zero) async throws(RedisError) -> RedisValue {
        try await send(arguments, blockingFor: blockingFor)
    }

    public func pipeline(_ commands: [RedisCommand], blockingFor: Duration = .zero) async throws(RedisError) -> [RedisValue] {
        if Task.isCancelled { throw RedisError(.closed, "cancelled before sending") }
        let timeout = configuration.commandTimeout + blockingFor
        let worker = self.worker
        let metrics = self.metrics
        let operation = worker.nextOperation()
        let result: Result<[RedisValue], RedisError> = await withTaskCancellationHandler {
            do throws(RedisError) {
                return .success(try await RedisClient.execute(commands, on: worker, timeout: timeout, metrics: metrics, operation: operation, decode: \.value))
            } catch {
                return .failure(error)
            }
        } onCancel: {
            worker.interrupt(operation: operation)
        }
        return try result.get()
    }

    /// Closes the connection and stops its thread.
    public func close() { worker.stop() }

    /// Ends the command in flight at once (it fails with `redis.connectionLost`) and closes
    /// the connection: how a consumer stops a blocking read from another task.
    public func abort() {
        worker.interruptCurrent()
        worker.stop()
    }
}

/// hiredis writes with write(2): a write racing a server restart would raise SIGPIPE and kill
/// the process. The failure must surface as `redis.connectionLost` instead, so the first
/// client of a process ignores SIGPIPE (Linux has no per-socket SO_NOSIGPIPE).
private let ignoreSIGPIPE: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

/// swift-metrics handles of one client.
struct RedisMetrics: Sendable {
    let roundTrip = Metrics.Timer(label: "radgrid_redis_roundtrip")
    let commands = Counter(label: "radgrid_redis_commands_total")

    func errors(_ code: String) -> Counter {
        Counter(label: "radgrid_redis_errors_total", dimensions: [("code", code)])
    }
}
