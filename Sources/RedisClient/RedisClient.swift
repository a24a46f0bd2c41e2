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
///
/// Against a Redis Cluster (`redis+cluster://` URL) the same calls are routed by slot: see
/// `ClusterRouter`. A single server stays the default and takes the direct path.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    private let epoch = ConnectionEpoch()
    private let metrics: RedisMetrics
    private let topology: Topology

    private enum Topology: Sendable {
        case single(ConnectionPool)
        case cluster(ClusterRouter)
    }

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "radgrid.redis")) {
        ignoreSIGPIPE
        self.configuration = configuration
        self.logger = logger
        let metrics = RedisMetrics()
        self.metrics = metrics
        if configuration.isCluster {
            topology = .cluster(ClusterRouter(configuration: configuration, logger: logger, epoch: epoch, metrics: metrics))
        } else {
            topology = .single(ConnectionPool(configuration: configuration, logger: logger, epoch: epoch))
        }
    }

    /// True when this client talks to a Redis Cluster.
    public var isCluster: Bool { configuration.isCluster }

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
        try await pipeline(commands, durable: false, decode: decode)
    }

    /// Like `pipeline(_:)`; when `durable` and the configuration asks for acknowledgements
    /// (`acknowledgeReplicas > 0`, URL `?wait=N`), the write is acknowledged only once that
    /// many replicas hold it (`WAIT` on the same connection, per node in a cluster). Fewer
    /// in time throws `redis.notReplicated`: the write is on the master but may be lost if it
    /// fails now. Used for intake commits, completions and routing decisions.
    public func pipeline(_ commands: [RedisCommand], durable: Bool) async throws(RedisError) -> [RedisValue] {
        try await pipeline(commands, durable: durable, decode: \.value)
    }

    public func pipeline<Output: Sendable>(_ commands: [RedisCommand], durable: Bool,
                                           decode: @escaping @Sendable (RedisReply) -> Output) async throws(RedisError) -> [Output] {
        if commands.isEmpty { return [] }
        switch topology {
        case .single(let pool):
            guard durable && configuration.acknowledgeReplicas > 0 else {
                return try await pool.execute(commands, metrics: metrics, decode: decode)
            }
            let acknowledged = commands + [Self.waitCommand(configuration)]
            let replies = try await pool.execute(acknowledged, metrics: metrics) { reply -> (Output, RedisValue?) in
                (decode(reply), reply.kind == .integer || reply.kind == .error ? reply.value : nil)
            }
            try Self.checkAcknowledged(replies[commands.count].1, configuration: configuration)
            return replies.dropLast().map(\.0)
        case .cluster(let router):
            return try await router.pipeline(commands, durable: durable, decode: decode)
        }
    }

    /// Sends one command as a durable write (see `pipeline(_:durable:)`).
    @discardableResult
    public func sendDurable(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        try await pipeline([command], durable: true)[0].throwingServerError()
    }

    static func waitCommand(_ configuration: RedisConfiguration) -> RedisCommand {
        RedisCommand("WAIT", RedisArgument(configuration.acknowledgeReplicas), RedisArgument(Self.milliseconds(configuration.acknowledgeTimeout)))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func checkAcknowledged(_ reply: RedisValue?, configuration: RedisConfiguration) throws(RedisError) {
        let acknowledged = reply?.int ?? -1
        if acknowledged < Int64(configuration.acknowledgeReplicas) {
            RedisMetrics.notReplicated.increment()
            throw RedisError(.notReplicated, "\(max(0, acknowledged)) of \(configuration.acknowledgeReplicas) replicas acknowledged the write within \(Self.milliseconds(configuration.acknowledgeTimeout)) ms")
        }
    }

    /// Sends `command` to every node, masters and replicas (one node for a single server):
    /// for server settings such as ACL users, which a cluster does not share between nodes.
    public func sendToEveryNode(_ command: RedisCommand) async throws(RedisError) -> [RedisValue] {
        switch topology {
        case .single(let pool):
            return [try await pool.execute([command], metrics: metrics, decode: \.value)[0].throwingServerError()]
        case .cluster(let router):
            var replies: [RedisValue] = []
            for node in try await router.allNodes() {
                replies.append(try await router.pool(for: node).execute([command], metrics: metrics, decode: \.value)[0].throwingServerError())
            }
            return replies
        }
    }

    /// Every key matching `pattern`, by `SCAN` (on each master of a cluster). For admin paths:
    /// it walks the whole key space.
    public func scanKeys(matching pattern: String, count: Int = 1000) async throws(RedisError) -> [String] {
        var keys: [String] = []
        func walk(_ send: (RedisCommand) async throws(RedisError) -> RedisValue) async throws(RedisError) {
            var cursor = "0"
            repeat {
                let reply = try await send(RedisCommand("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", RedisArgument(count)))
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array else {
                    throw RedisError(.unexpectedReply, "SCAN reply")
                }
                cursor = next
                keys += batch.compactMap(\.string)
            } while cursor != "0"
        }
        switch topology {
        case .single(let pool):
            try await walk { (command) throws(RedisError) in try await pool.execute([command], metrics: metrics, decode: \.value)[0].throwingServerError() }
        case .cluster(let router):
            for node in try await router.masters() {
                let pool = try router.pool(for: node)
                try await walk { (command) throws(RedisError) in try await pool.execute([command], metrics: metrics, decode: \.value)[0].throwingServerError() }
            }
        }
        return keys
    }

    /// Runs a Lua script by SHA (EVALSHA), loading it on NOSCRIPT.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []) async throws(RedisError) -> RedisValue {
        try await send(.script(script, keys: keys, arguments: arguments))
    }

    /// A connection of its own for blocking commands; close it when done. In a cluster it
    /// holds one connection per node it has been sent to, following each command's slot.
    public func dedicatedConnection(name: String = "radgrid-redis-dedicated") -> RedisDedicatedConnection {
        switch topology {
        case .single(let pool):
            return RedisDedicatedConnection(worker: pool.dedicatedWorker(name: name), configuration: configuration, metrics: metrics)
        case .cluster(let router):
            return RedisDedicatedConnection(router: router, name: name, configuration: configuration, metrics: metrics)
        }
    }

    /// Closes every connection; later calls fail with `redis.closed`.
    public func shutdown() {
        switch topology {
        case .single(let pool): pool.shutdown()
        case .cluster(let router): router.shutdown()
        }
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
///
/// Against a cluster it opens a connection to the node that owns the command's slot (one per
/// node, kept), follows MOVED and waits out a failover like the shared pool.
public final class RedisDedicatedConnection: Sendable {
    private let fixed: ConnectionWorker?
    private let router: ClusterRouter?
    private let name: String
    private let configuration: RedisConfiguration
    private let metrics: RedisMetrics
    private let nodeWorkers = Mutex<[ClusterNode: ConnectionWorker]>([:])

    init(worker: ConnectionWorker, configuration: RedisConfiguration, metrics: RedisMetrics) {
        self.fixed = worker
        self.router = nil
        self.name = ""
        self.configuration = configuration
        self.metrics = metrics
    }

    init(router: ClusterRouter, name: String, configuration: RedisConfiguration, metrics: RedisMetrics) {
        self.fixed = nil
        self.router = router
        self.name = name
        self.configuration = configuration
        self.metrics = metrics
    }

    deinit { close() }

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

    /// In a cluster, every command of one call must live on one node (the first one's slot
    /// decides).
    public func pipeline(_ commands: [RedisCommand], blockingFor: Duration = .zero) async throws(RedisError) -> [RedisValue] {
        if Task.isCancelled { throw RedisError(.closed, "cancelled before sending") }
        guard let router else { return try await run(commands, on: fixed!, blockingFor: blockingFor) }
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.clusterRetryWindow
        var pause = Duration.milliseconds(20)
        let slot = commands.lazy.compactMap(\.clusterSlot).first
        var asking: ClusterNode?
        while true {
            let node: ClusterNode
            if let asked = asking { node = asked } else { node = try await router.owner(ofSlot: slot) }
            let worker = worker(for: node)
            var failure: RedisError
            do throws(RedisError) {
                let replies = try await run(asking == nil ? commands : [RedisCommand("ASKING")] + commands, on: worker, blockingFor: blockingFor)
                let own = asking == nil ? replies : Array(replies.dropFirst())
                asking = nil
                guard let redirect = own.lazy.compactMap({ reply -> ClusterRedirect? in
                    if case .error(let message) = reply { return ClusterRedirect(message: message) }
                    return nil
                }).first else { return own }
                switch redirect {
                case .moved(let slot, let owner):
                    router.learn(slot: slot, owner: owner)
                    failure = RedisError(.server, "MOVED")
                case .ask(let owner):
                    asking = owner
                    continue
                case .retryLater(let code):
                    failure = RedisError(.server, "\(code) the cluster is not serving this slot now")
                }
            } catch {
                // Cancellation and lost connections surface; an unreachable node is replaced.
                guard error.kind == .connection else { throw error }
                failure = error
            }
            await router.refresh(after: -1)
            if clock.now + pause > deadline { throw failure }
            do { try await Task.sleep(for: pause) } catch { throw RedisError(.closed, "cancelled while waiting for the cluster") }
            pause = min(pause * 2, .milliseconds(500))
        }
    }

    private func worker(for node: ClusterNode) -> ConnectionWorker {
        nodeWorkers.withLock { workers in
            if let worker = workers[node] { return worker }
            var nodeConfiguration = configuration
            nodeConfiguration.endpoint = .tcp(host: node.host, port: node.port)
            nodeConfiguration.clusterSeeds = []
            nodeConfiguration.reconnectWait = .milliseconds(200)
            let worker = ConnectionWorker(name: name, configuration: nodeConfiguration, logger: router!.loggerForConnections, epoch: ConnectionEpoch())
            workers[node] = worker
            return worker
        }
    }

    private var allWorkers: [ConnectionWorker] {
        if let fixed { return [fixed] }
        return nodeWorkers.withLock { Array($0.values) }
    }

    private func run(_ commands: [RedisCommand], on worker: ConnectionWorker, blockingFor: Duration) async throws(RedisError) -> [RedisValue] {
        let timeout = configuration.commandTimeout + blockingFor
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
    public func close() {
        for worker in allWorkers { worker.stop() }
    }

    /// Ends the command in flight at once (it fails with `redis.connectionLost`) and closes
    /// the connection: how a consumer stops a blocking read from another task.
    public func abort() {
        for worker in allWorkers {
            worker.interruptCurrent()
            worker.stop()
        }
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
    /// Durable writes whose replicas did not all acknowledge in time.
    static let notReplicated = Counter(label: "radgrid_redis_not_replicated_total")

    func errors(_ code: String) -> Counter {
        Counter(label: "radgrid_redis_errors_total", dimensions: [("code", code)])
    }
}
