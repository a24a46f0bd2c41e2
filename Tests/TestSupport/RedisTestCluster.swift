import Foundation
import RedisClient

/// A private Redis Cluster for tests: 3 masters and 3 replicas on free ports, each node in its
/// own temp dir, killed at the end. For tests that kill a master or move slots; suites that
/// only need "a cluster" run under `scripts/with-private-redis-cluster.sh`.
public final class RedisTestCluster: @unchecked Sendable {
    public let ports: [Int]
    public let directory: URL
    private let lock = NSLock()
    private var processes: [Int: ChildProcess] = [:]

    /// `redis+cluster://` with the first three nodes as seeds.
    public var url: String { "redis+cluster://" + ports.prefix(3).map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    private init(ports: [Int], directory: URL) {
        self.ports = ports
        self.directory = directory
    }

    deinit {
        for process in processes.values {
            process.signal(SIGKILL)
            process.wait(timeout: .seconds(5))
        }
        try? FileManager.default.removeItem(at: directory)
    }

    public static func start() async throws -> RedisTestCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-cluster-\(UUID().uuidString)")
        var ports: [Int] = []
        // The cluster bus listens on port + 10000: both must be free.
        while ports.count < 6 {
            let port = try freePort()
            if port < 55000, !ports.contains(port), portIsFree(port + 10000) { ports.append(port) }
        }
        let cluster = RedisTestCluster(ports: ports, directory: directory)
        for port in ports {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(String(port)), withIntermediateDirectories: true)
            try cluster.launch(port: port)
        }
        for port in ports { try await cluster.waitForPing(port) }
        let create = try ChildProcess(executable: cliPath, arguments: ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" }
                                      + ["--cluster-replicas", "1", "--cluster-yes"],
                                      outputPath: directory.appendingPathComponent("create.log").path)
        guard create.wait(timeout: .seconds(30)) == 0 else { throw TestSupportError("redis-cli --cluster create failed (see \(directory.path)/create.log)") }
        try await cluster.waitUntilHealthy()
        try await cluster.waitForReplicas()
        return cluster
    }

    /// Waits until every replica's link to its master is up (synced): before that a durable
    /// write cannot be acknowledged and a replica may not take over.
    public func waitForReplicas(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var synced = 0
            for port in alivePorts {
                let info = (try? await node(port, "INFO", "replication").string) ?? ""
                if info.contains("role:slave") && info.contains("master_link_status:up") { synced += 1 }
            }
            if synced == 3 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("the test cluster's replicas did not sync (see \(directory.path))")
    }

    /// Sends one command to one node (no routing): for setting up and inspecting.
    public func node(_ port: Int, _ arguments: RedisArgument...) async throws -> RedisValue {
        let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), connectTimeout: .milliseconds(300), reconnectWait: .zero))
        defer { client.shutdown() }
        return try await client.send(arguments)
    }

    /// The port of the master that serves `slot` now, as that node's own map says.
    public func master(ofSlot slot: Int, asking port: Int? = nil) async throws -> Int {
        for candidate in port.map({ [$0] }) ?? alivePorts {
            guard let ranges = try? await node(candidate, "CLUSTER", "SLOTS").array else { continue }
            for range in ranges {
                guard let parts = range.array, let start = parts[0].int, let end = parts[1].int, (start...end).contains(Int64(slot)),
                      let master = parts[2].array, let masterPort = master[1].int else { continue }
                return Int(masterPort)
            }
        }
        throw TestSupportError("no node knows the master of slot \(slot)")
    }

    public var alivePorts: [Int] { lock.withLock { processes.keys.sorted() } }

    private func launch(port: Int) throws {
        let nodeDirectory = directory.appendingPathComponent(String(port))
        let process = try ChildProcess(executable: RedisTestServer.serverPath, arguments: [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", nodeDirectory.path, "--save", "", "--appendonly", "no",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
            "--daemonize", "no", "--loglevel", "warning", "--logfile", nodeDirectory.appendingPathComponent("redis.log").path,
        ])
        lock.withLock { processes[port] = process }
    }

    /// Starts a killed node again with its own cluster config: a master that lost its slots
    /// to a failover rejoins as the replica of its successor.
    public func restart(port: Int) async throws {
        try launch(port: port)
        try await waitForPing(port)
    }

    /// Replaces a dead node the way an operator does: a clean node on the same port joins the
    /// cluster and replicates `masterPort` (it never claims its old slots back).
    public func replaceAsReplica(port: Int, of masterPort: Int) async throws {
        let nodeDirectory = directory.appendingPathComponent(String(port))
        try? FileManager.default.removeItem(at: nodeDirectory)
        try FileManager.default.createDirectory(at: nodeDirectory, withIntermediateDirectories: true)
        try await restart(port: port)
        // Users are per node: the replacement gets the master's (as an operator's aclfile would).
        for line in try await node(masterPort, "ACL", "LIST").array?.compactMap(\.string) ?? [] {
            let rules = Self.aclRules(line)
            guard rules.count >= 2, rules[0] == "user" else { continue }
            let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), reconnectWait: .zero))
            defer { client.shutdown() }
            _ = try await client.send(["ACL", "SETUSER"] + rules.dropFirst().map { RedisArgument($0) })
        }
        _ = try await node(port, "CLUSTER", "MEET", "127.0.0.1", RedisArgument(masterPort))
        let masterID = try await node(masterPort, "CLUSTER", "MYID").string ?? ""
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if (try? await node(port, "CLUSTER", "REPLICATE", RedisArgument(masterID)))?.string == "OK" {
                try await waitForReplicas()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("node \(port) did not become a replica of \(masterPort)")
    }

    /// An `ACL LIST` line split into words, keeping `( … )` selectors whole.
    static func aclRules(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var depth = 0
        for character in line {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == " " && depth == 0 {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// SIGKILL one node.
    public func kill(port: Int) {
        let process = lock.withLock { processes.removeValue(forKey: port) }
        process?.signal(SIGKILL)
        process?.wait(timeout: .seconds(5))
    }

    /// Waits until every live node reports `cluster_state:ok` with all slots served.
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var healthy = true
            for port in alivePorts {
                let info = (try? await node(port, "CLUSTER", "INFO").string) ?? ""
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") { healthy = false; break }
            }
            if healthy { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("the test cluster did not become healthy (see \(directory.path))")
    }

    private func waitForPing(_ port: Int) async throws {
        for _ in 0..<200 {
            if let reply = try? await node(port, "PING"), reply.string == "PONG" { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSupportError("cluster node on port \(port) did not start")
    }

    static var cliPath: String {
        for candidate in ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "redis-cli"
    }

    private static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
