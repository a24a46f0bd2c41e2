import Logging
import Synchronization

/// Up to `configuration.poolSize` connections to one server, each with its own thread, lent
/// to one pipeline at a time. A single-node client has one pool; a cluster client one per node.
final class ConnectionPool: Sendable {
    let configuration: RedisConfiguration
    private let logger: Logger
    private let epoch: ConnectionEpoch
    private let namePrefix: String
    private let state: Mutex<State>

    private struct State: ~Copyable {
        var idle: [ConnectionWorker] = []
        var created = 0
        var waiters: [CheckedContinuation<ConnectionWorker?, Never>] = []
        var all: [ConnectionWorker] = []
        var closed = false
    }

    init(configuration: RedisConfiguration, logger: Logger, epoch: ConnectionEpoch, namePrefix: String = "radgrid-redis") {
        self.configuration = configuration
        self.logger = logger
        self.epoch = epoch
        self.namePrefix = namePrefix
        self.state = Mutex(State())
    }

    /// Runs `commands` on a pooled connection (see `RedisClient.execute`).
    func execute<Output: Sendable>(_ commands: [RedisCommand], metrics: RedisMetrics,
                                   decode: @escaping @Sendable (RedisReply) -> Output) async throws(RedisError) -> [Output] {
        let worker = try await acquire()
        defer { release(worker) }
        return try await RedisClient.execute(commands, on: worker, timeout: configuration.commandTimeout, metrics: metrics, decode: decode)
    }

    /// A connection of its own, outside the pool, for blocking commands.
    func dedicatedWorker(name: String) -> ConnectionWorker {
        ConnectionWorker(name: name, configuration: configuration, logger: logger, epoch: epoch)
    }

    /// Closes every connection; later calls fail with `redis.closed`.
    func shutdown() {
        let (workers, waiters) = state.withLock { state -> ([ConnectionWorker], [CheckedContinuation<ConnectionWorker?, Never>]) in
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

    private func acquire() async throws(RedisError) -> ConnectionWorker {
        enum Decision { case use(ConnectionWorker), create(Int), wait, closed }
        let decision = state.withLock { state -> Decision in
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
            let worker = ConnectionWorker(name: "\(namePrefix)-\(number)", configuration: configuration, logger: logger, epoch: epoch)
            let closed = state.withLock { state in
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
                let immediate = state.withLock { state -> ConnectionWorker?? in
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
        let waiter = state.withLock { state -> CheckedContinuation<ConnectionWorker?, Never>? in
            if state.closed { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(worker)
            return nil
        }
        waiter?.resume(returning: worker)
    }
}
