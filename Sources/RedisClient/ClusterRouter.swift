import Logging
import Metrics
import RadGridCore
import Synchronization

/// A node of a Redis Cluster, as `CLUSTER SLOTS` names it.
struct ClusterNode: Hashable, Sendable, CustomStringConvertible {
    let host: String
    let port: Int
    var description: String { RedisConfiguration.hostPort(.tcp(host: host, port: port)) }
}

/// What a cluster node answered instead of a reply: the command must run elsewhere or later.
enum ClusterRedirect: Sendable {
    /// `MOVED <slot> <host:port>`: the slot lives there now; the slot map is stale.
    case moved(slot: Int, node: ClusterNode)
    /// `ASK <slot> <host:port>`: the slot is migrating; this one command goes there after `ASKING`.
    case ask(node: ClusterNode)
    /// `TRYAGAIN` (keys of a multi-key command mid-migration) or `CLUSTERDOWN` (slots not
    /// served, e.g. during a failover): retry after a pause.
    case retryLater(String)

    /// Reads a redirect from an error reply; nil for any other reply.
    init?(_ reply: RedisReply) {
        guard reply.kind == .error else { return nil }
        let isRedirect = reply.withBytes { bytes in
            bytes.starts(with: "MOVED ".utf8) || bytes.starts(with: "ASK ".utf8)
                || bytes.starts(with: "TRYAGAIN".utf8) || bytes.starts(with: "CLUSTERDOWN".utf8)
        }
        guard isRedirect, let message = reply.errorMessage else { return nil }
        self.init(message: message)
    }

    init?(message: String) {
        if message.hasPrefix("TRYAGAIN") || message.hasPrefix("CLUSTERDOWN") {
            self = .retryLater(String(message.prefix(while: { $0 != " " })))
            return
        }
        let parts = message.split(separator: " ")
        guard parts.count >= 3, let slot = Int(parts[1]), let colon = parts[2].lastIndex(of: ":"),
              let port = Int(parts[2][parts[2].index(after: colon)...]) else { return nil }
        var host = String(parts[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let node = ClusterNode(host: host, port: port)
        switch parts[0] {
        case "MOVED": self = .moved(slot: slot, node: node)
        case "ASK": self = .ask(node: node)
        default: return nil
        }
    }
}

/// Routes commands over a Redis Cluster: a slot map learnt from `CLUSTER SLOTS`, a
/// connection pool per node, redirections followed, failover waited out.
///
/// A pipeline is split by the node that owns each command's slot; the groups run at once and
/// the replies are put back in the order of the commands. Blocking reads use
/// `RedisDedicatedConnection`, which routes the same way.
final class ClusterRouter: Sendable {
    let configuration: RedisConfiguration
    private let logger: Logger
    var loggerForConnections: Logger { logger }
    private let epoch: ConnectionEpoch
    private let metrics: RedisMetrics
    private let state = Mutex(State())
    private let refreshes = Counter(label: "radgrid_redis_cluster_refreshes_total")
    private let redirects = Counter(label: "radgrid_redis_cluster_redirects_total")

    private struct State: ~Copyable {
        /// Index into `nodes` of each slot's master; -1 when unknown.
        var owners = [Int16](repeating: -1, count: ClusterSlot.count)
        var nodes: [ClusterNode] = []
        /// Every node seen (masters and replicas): where to ask for the map next time.
        var known: [ClusterNode] = []
        var pools: [ClusterNode: ConnectionPool] = [:]
        var version = 0
        var refreshing: Task<Void, Never>?
        var closed = false
    }

    init(configuration: RedisConfiguration, logger: Logger, epoch: ConnectionEpoch, metrics: RedisMetrics) {
        self.configuration = configuration
        self.logger = logger
        self.epoch = epoch
        self.metrics = metrics
        let seeds = configuration.clusterSeeds.compactMap { endpoint -> ClusterNode? in
            if case .tcp(let host, let port) = endpoint { return ClusterNode(host: host, port: port) }
            return nil
        }
        state.withLock { $0.known = seeds }
    }

    func shutdown() {
        let pools = state.withLock { state -> [ConnectionPool] in
            state.closed = true
            defer { state.pools = [:] }
            return Array(state.pools.values)
        }
        for pool in pools { pool.shutdown() }
    }

    // MARK: - Routing

    /// Where a command goes: the owner of `slot`, any node (no key), or one node for one
    /// command after `ASKING`.
    private enum Target: Hashable {
        case slot(Int)
        case anyNode
        case asking(ClusterNode)
    }

    private enum Routed<Output: Sendable>: Sendable {
        case value(Output)
        case redirect(ClusterRedirect)
    }

    /// Runs `commands`, each on the node that owns its slot, and returns the replies in order.
    /// With `acknowledgeReplicas > 0`, each node's part ends with `WAIT` on the same connection.
    func pipeline<Output: Sendable>(_ commands: [RedisCommand], durable: Bool,
                                    decode: @escaping @Sendable (RedisReply) -> Output) async throws(RedisError) -> [Output] {
        var results = [Output?](repeating: nil, count: commands.count)
        var pending: [(index: Int, target: Target)] = commands.indices.map { index in
            (index, commands[index].clusterSlot.map(Target.slot) ?? .anyNode)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.clusterRetryWindow
        var pause = Duration.milliseconds(20)
        var lastError = RedisError(.connection, "no node of the cluster answered")
        let wrapped: @Sendable (RedisReply) -> Routed<Output> = { reply in
            if let redirect = ClusterRedirect(reply) { return .redirect(redirect) }
            return .value(decode(reply))
        }
        while !pending.isEmpty {
            // Group by node; slots without a known owner wait for a fresh map first.
            let version = state.withLock { $0.version }
            var groups: [ClusterNode: [(index: Int, target: Target)]] = [:]
            var unknown = false
            for item in pending {
                guard let node = node(for: item.target) else { unknown = true; continue }
                groups[node, default: []].append(item)
            }
            if unknown {
                if clock.now > deadline { throw RedisError(.connection, "the cluster serves no node for a slot (cluster down?)") }
                await refresh(after: version)
                if state.withLock({ $0.version }) == version { try await sleep(&pause, until: deadline, error: lastError) }
                continue
            }
            pending = []
            var needsRefresh = false
            var retryLater = false
            let outcomes = await run(groups, commands: commands, durable: durable, decode: wrapped)
            for outcome in outcomes {
                switch outcome.result {
                case .success(let replies):
                    for (item, reply) in zip(outcome.items, replies) {
                        switch reply {
                        case .value(let value): results[item.index] = value
                        case .redirect(let redirect):
                            redirects.increment()
                            switch redirect {
                            case .moved(let slot, let node):
                                learn(slot: slot, owner: node)
                                needsRefresh = true
                                pending.append((item.index, item.target))
                            case .ask(let node):
                                pending.append((item.index, .asking(node)))
                            case .retryLater(let code):
                                lastError = RedisError(.server, "\(code) the cluster is not serving this slot now")
                                retryLater = true
                                pending.append((item.index, item.target))
                            }
                        }
                    }
                case .failure(let error):
                    // Nothing was sent when the node could not be reached: find its successor
                    // and send again. A connection lost mid-reply may have run the commands:
                    // that is the caller's to judge, as with a single server.
                    if error.kind == .connection && clock.now < deadline {
                        lastError = error
                        needsRefresh = true
                        retryLater = true
                        pending += outcome.items.map { ($0.index, $0.target) }
                    } else {
                        if error.isConnectionFailure { Task { await self.refresh(after: version) } }
                        throw error
                    }
                }
            }
            if pending.isEmpty { break }
            if needsRefresh { await refresh(after: version) }
            if retryLater { try await sleep(&pause, until: deadline, error: lastError) }
            if clock.now > deadline { throw lastError }
        }
        return results.map { $0! }
    }

    private struct GroupOutcome<Output: Sendable>: Sendable {
        let items: [(index: Int, target: Target)]
        let result: Result<[Routed<Output>], RedisError>
    }

    private func run<Output: Sendable>(_ groups: [ClusterNode: [(index: Int, target: Target)]], commands: [RedisCommand], durable: Bool,
                                       decode: @escaping @Sendable (RedisReply) -> Routed<Output>) async -> [GroupOutcome<Output>] {
        if groups.count == 1, let (node, items) = groups.first {
            return [await runGroup(node: node, items: items, commands: commands, durable: durable, decode: decode)]
        }
        return await withTaskGroup(of: GroupOutcome<Output>.self) { group in
            for (node, items) in groups {
                group.addTask { await self.runGroup(node: node, items: items, commands: commands, durable: durable, decode: decode) }
            }
            var outcomes: [GroupOutcome<Output>] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
    }

    private func runGroup<Output: Sendable>(node: ClusterNode, items: [(index: Int, target: Target)], commands: [RedisCommand], durable: Bool,
                                            decode: @escaping @Sendable (RedisReply) -> Routed<Output>) async -> GroupOutcome<Output> {
        var batch: [RedisCommand] = []
        batch.reserveCapacity(items.count + 1)
        var asked: [Bool] = []
        for item in items {
            if case .asking = item.target {
                batch.append(RedisCommand("ASKING"))
                asked.append(true)
            }
            batch.append(commands[item.index])
            asked.append(false)
        }
        let acknowledge = durable && configuration.acknowledgeReplicas > 0
        if acknowledge { batch.append(RedisClient.waitCommand(configuration)) }
        do throws(RedisError) {
            let pool = try pool(for: node)
            let replies: [Routed<Output>]
            if asked.contains(true) || acknowledge {
                // The replies to ASKING and WAIT are dropped after decoding (decoders accept
                // any reply); WAIT's count is checked.
                let decoded = try await pool.execute(batch, metrics: metrics) { reply -> (Routed<Output>, RedisValue?) in
                    (decode(reply), reply.kind == .integer || reply.kind == .error ? reply.value : nil)
                }
                var kept: [Routed<Output>] = []
                kept.reserveCapacity(items.count)
                for (position, reply) in decoded.enumerated() {
                    if position < asked.count {
                        if !asked[position] { kept.append(reply.0) }
                    } else {
                        try RedisClient.checkAcknowledged(reply.1, configuration: configuration)
                    }
                }
                replies = kept
            } else {
                replies = try await pool.execute(batch, metrics: metrics, decode: decode)
            }
            return GroupOutcome(items: items, result: .success(replies))
        } catch {
            return GroupOutcome(items: items, result: .failure(error))
        }
    }

    private func node(for target: Target) -> ClusterNode? {
        state.withLock { state -> ClusterNode? in
            switch target {
            case .asking(let node): return node
            case .anyNode: return state.nodes.first ?? state.known.first
            case .slot(let slot):
                let owner = Int(state.owners[slot])
                return owner >= 0 ? state.nodes[owner] : nil
            }
        }
    }

    /// The node that serves `slot` now, learning the map first when it is unknown.
    func owner(ofSlot slot: Int?) async throws(RedisError) -> ClusterNode {
        let target = slot.map(Target.slot) ?? .anyNode
        if let node = node(for: target) { return node }
        await refresh(after: state.withLock { $0.version })
        guard let node = node(for: target) else { throw RedisError(.connection, "the cluster serves no node for slot \(slot ?? -1)") }
        return node
    }

    func pool(for node: ClusterNode) throws(RedisError) -> ConnectionPool {
        let pool = state.withLock { state -> ConnectionPool? in
            if state.closed { return nil }
            if let pool = state.pools[node] { return pool }
            var nodeConfiguration = configuration
            nodeConfiguration.endpoint = .tcp(host: node.host, port: node.port)
            nodeConfiguration.clusterSeeds = []
            // A dead master is replaced, not waited for: fail fast and look the slot up again.
            nodeConfiguration.reconnectWait = .milliseconds(200)
            nodeConfiguration.connectTimeout = min(configuration.connectTimeout, .milliseconds(500))
            let pool = ConnectionPool(configuration: nodeConfiguration, logger: logger, epoch: epoch, namePrefix: "radgrid-redis-\(node.port)")
            state.pools[node] = pool
            return pool
        }
        guard let pool else { throw RedisError(.closed, "the Redis client was shut down") }
        return pool
    }

    /// A MOVED reply names the slot's new owner: use it at once, before the full map arrives.
    func learn(slot: Int, owner: ClusterNode) {
        state.withLock { state in
            if let index = state.nodes.firstIndex(of: owner) {
                state.owners[slot] = Int16(index)
            } else {
                state.nodes.append(owner)
                state.owners[slot] = Int16(state.nodes.count - 1)
            }
        }
    }

    private func sleep(_ pause: inout Duration, until deadline: ContinuousClock.Instant, error: RedisError) async throws(RedisError) {
        if ContinuousClock().now + pause > deadline { throw error }
        do { try await Task.sleep(for: pause) } catch { throw RedisError(.closed, "cancelled while waiting for the cluster") }
        pause = min(pause * 2, .milliseconds(500))
    }

    // MARK: - The slot map

    /// Reads the slot map again unless someone did since `version`; concurrent callers share
    /// one refresh.
    func refresh(after version: Int) async {
        let task = state.withLock { state -> Task<Void, Never>? in
            if state.closed || state.version > version { return nil }
            if let running = state.refreshing { return running }
            let task = Task { await self.loadSlotMap() }
            state.refreshing = task
            return task
        }
        await task?.value
    }

    private func loadSlotMap() async {
        refreshes.increment()
        let candidates = state.withLock { state -> [ClusterNode] in
            var seen = Set<ClusterNode>()
            return (state.nodes + state.known).filter { seen.insert($0).inserted }
        }
        var loaded = false
        // Each node that cannot answer is passed over for the next; what they said is kept
        // for the warning when none gives a full map.
        var failures: [String] = []
        for node in candidates {
            do throws(RedisError) {
                let reply = try await pool(for: node).execute([RedisCommand("CLUSTER", "SLOTS")], metrics: metrics, decode: \.value)[0]
                if try apply(reply.throwingServerError(), askedNode: node) {
                    loaded = true
                    break
                }
                failures.append("\(node): partial slot map")
            } catch {
                failures.append("\(node): \(error.code) \(error.message)")
            }
        }
        state.withLock { state in
            state.refreshing = nil
            state.version += 1
        }
        if !loaded {
            logger.warning("no cluster node gave a full slot map", metadata: ["redis": "\(configuration.redactedURL)", "nodes": "\(failures.joined(separator: "; "))"])
        }
    }

    /// Replaces the map with a `CLUSTER SLOTS` reply; false when it does not cover every slot
    /// (a node that has not caught up): another node is asked then.
    private func apply(_ reply: RedisValue, askedNode: ClusterNode) -> Bool {
        guard let ranges = reply.array else { return false }
        var owners = [Int16](repeating: -1, count: ClusterSlot.count)
        var nodes: [ClusterNode] = []
        var known: [ClusterNode] = []
        var covered = 0
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                  start >= 0, end < ClusterSlot.count, start <= end else { return false }
            var rangeNodes: [ClusterNode] = []
            for entry in parts[2...] {
                guard let fields = entry.array, fields.count >= 2, let port = fields[1].int else { continue }
                var host = fields[0].string ?? ""
                // An empty or "?" host means "the address you reached me at".
                if host.isEmpty || host == "?" { host = askedNode.host }
                rangeNodes.append(ClusterNode(host: host, port: Int(port)))
            }
            guard let master = rangeNodes.first else { return false }
            known += rangeNodes
            let index: Int
            if let existing = nodes.firstIndex(of: master) { index = existing } else { nodes.append(master); index = nodes.count - 1 }
            for slot in Int(start)...Int(end) { owners[slot] = Int16(index) }
            covered += Int(end - start + 1)
        }
        guard covered == ClusterSlot.count else { return false }
        let knownNodes = known
        state.withLock { state in
            state.owners = owners
            state.nodes = nodes
            var seen = Set<ClusterNode>()
            state.known = (knownNodes + state.known).filter { seen.insert($0).inserted }
        }
        return true
    }

    /// Every live node, masters and replicas, as `CLUSTER NODES` on a master lists them
    /// (`CLUSTER SLOTS` leaves out replicas still syncing).
    func allNodes() async throws(RedisError) -> [ClusterNode] {
        var lastError = RedisError(.connection, "no node of the cluster answered")
        for master in try await masters() {
            do throws(RedisError) {
                let reply = try await pool(for: master).execute([RedisCommand("CLUSTER", "NODES")], metrics: metrics, decode: \.value)[0]
                guard let text = try reply.throwingServerError().string else { continue }
                var nodes: [ClusterNode] = []
                for line in text.split(separator: "\n") {
                    let fields = line.split(separator: " ")
                    guard fields.count >= 3 else { continue }
                    let flags = fields[2].split(separator: ",")
                    if flags.contains(where: { $0.hasPrefix("fail") || $0 == "noaddr" || $0 == "handshake" }) { continue }
                    let address = fields[1].prefix(while: { $0 != "@" && $0 != "," })
                    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { continue }
                    var host = String(address[..<colon])
                    if host.isEmpty { host = master.host }
                    nodes.append(ClusterNode(host: host, port: port))
                }
                if !nodes.isEmpty { return nodes }
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// The masters, for commands that must visit each (SCAN).
    func masters() async throws(RedisError) -> [ClusterNode] {
        if state.withLock({ $0.nodes.isEmpty }) { await refresh(after: state.withLock { $0.version }) }
        let nodes = state.withLock { $0.nodes }
        if nodes.isEmpty { throw RedisError(.connection, "no node of the cluster answered") }
        return nodes
    }
}
