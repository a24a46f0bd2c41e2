/// How to reach Redis and how patient to be with it.
public struct RedisConfiguration: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// ACL user (Redis 6+); nil uses the `default` user.
    public var username: String?
    public var password: String?
    public var database: Int
    public var connectTimeout: Duration
    /// Longest wait for a reply to an ordinary command. Blocking commands add their own
    /// block time on top of this (see `RedisDedicatedConnection.send(blockingFor:)`).
    public var commandTimeout: Duration
    /// Connections in the shared pool (each has its own thread).
    public var poolSize: Int
    /// Reconnect backoff: first delay and cap.
    public var reconnectBackoffInitial: Duration
    public var reconnectBackoffMax: Duration
    /// How long a command waits for the server to come back before failing.
    public var reconnectWait: Duration
    /// Seed nodes of a Redis Cluster; empty for a single server (`endpoint`). The client
    /// learns the rest of the cluster from them.
    public var clusterSeeds: [Endpoint]
    /// How long a cluster command keeps retrying through redirections, `TRYAGAIN`,
    /// `CLUSTERDOWN` and a master's failover before it fails.
    public var clusterRetryWindow: Duration
    /// Replicas that must acknowledge a durable write (`WAIT`) before it counts as done;
    /// 0 turns durable writes into ordinary ones. See `RedisClient.pipeline(_:durable:)`.
    public var acknowledgeReplicas: Int
    /// Longest wait for those acknowledgements.
    public var acknowledgeTimeout: Duration

    public var isCluster: Bool { !clusterSeeds.isEmpty }

    public init(
        endpoint: Endpoint = .tcp(host: "127.0.0.1", port: 6379),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(10),
        poolSize: Int = 4,
        reconnectBackoffInitial: Duration = .milliseconds(20),
        reconnectBackoffMax: Duration = .seconds(1),
        reconnectWait: Duration = .seconds(5),
        clusterSeeds: [Endpoint] = [],
        clusterRetryWindow: Duration = .seconds(10),
        acknowledgeReplicas: Int = 0,
        acknowledgeTimeout: Duration = .milliseconds(500)
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.poolSize = max(1, poolSize)
        self.reconnectBackoffInitial = reconnectBackoffInitial
        self.reconnectBackoffMax = reconnectBackoffMax
        self.reconnectWait = reconnectWait
        self.clusterSeeds = clusterSeeds
        self.clusterRetryWindow = clusterRetryWindow
        self.acknowledgeReplicas = max(0, acknowledgeReplicas)
        self.acknowledgeTimeout = acknowledgeTimeout
    }

    /// Parses `redis://[user:password@]host[:port][/db]`, `unix:///path/to/socket[?db=N]` or
    /// `redis+cluster://[user:password@]host:port,host:port` (seed nodes of a Redis Cluster;
    /// `redis://…?cluster=1` means the same). Query items: `timeout=<seconds>` and `pool=<n>`
    /// tune the client (`pool` is per node in a cluster), `wait=<replicas>` and
    /// `waitTimeout=<ms>` the acknowledgement of durable writes.
    public init(url: String) throws(RedisError) {
        self.init()
        var rest: Substring
        if url.hasPrefix("redis+cluster://") {
            rest = url.dropFirst("redis+cluster://".count)
            clusterSeeds = [.tcp(host: "", port: 0)]  // parsed below
        } else if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
        } else if url.hasPrefix("unix://") {
            rest = url.dropFirst("unix://".count)
            let (path, query) = Self.splitQuery(rest)
            guard path.hasPrefix("/") else { throw RedisError(.invalidURL, "unix URL needs an absolute socket path") }
            endpoint = .unix(path: String(path))
            try applyQuery(query)
            return
        } else if url.hasPrefix("rediss://") {
            throw RedisError(.invalidURL, "TLS (rediss://) is not supported by this build; use a TLS tunnel or a private network")
        } else {
            throw RedisError(.invalidURL, "URL must start with redis:// or unix://")
        }
        let (beforeQuery, query) = Self.splitQuery(rest)
        rest = beforeQuery
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = Self.percentDecoded(credentials[..<colon])
                username = user.isEmpty ? nil : user
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                // `redis://secret@host` is the pre-ACL form: the one field is the password.
                password = Self.percentDecoded(credentials)
            }
        }
        var hostPorts = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPorts = rest[..<slash]
            let databaseText = rest[rest.index(after: slash)...]
            if !databaseText.isEmpty {
                guard let number = Int(databaseText), number >= 0 else {
                    throw RedisError(.invalidURL, "database must be a non-negative number")
                }
                database = number
            }
        }
        let seeds = try hostPorts.split(separator: ",", omittingEmptySubsequences: false).map { (part) throws(RedisError) -> Endpoint in
            try Self.endpoint(part)
        }
        if !isCluster, seeds.count > 1 {
            throw RedisError(.invalidURL, "several hosts need redis+cluster://")
        }
        endpoint = seeds[0]
        if isCluster { clusterSeeds = seeds }
        try applyQuery(query)
        if isCluster && database != 0 { throw RedisError(.invalidURL, "a Redis Cluster has only database 0") }
    }

    private static func endpoint(_ hostPort: Substring) throws(RedisError) -> Endpoint {
        var host = String(hostPort)
        var port = 6379
        if hostPort.hasPrefix("[") {
            // IPv6 literal: [::1]:6379
            guard let close = hostPort.firstIndex(of: "]") else { throw RedisError(.invalidURL, "unterminated IPv6 address") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let parsed = Int(after.dropFirst()) else { throw RedisError(.invalidURL, "port is not a number") }
                port = parsed
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let parsed = Int(hostPort[hostPort.index(after: colon)...]) else {
                throw RedisError(.invalidURL, "port is not a number")
            }
            port = parsed
        }
        guard (1...65535).contains(port) else { throw RedisError(.invalidURL, "port \(port) is out of range") }
        if host.isEmpty { host = "127.0.0.1" }
        return .tcp(host: host, port: port)
    }

    /// The URL without the password, for logs and `radgridctl ping`.
    public var redactedURL: String {
        switch endpoint {
        case .unix(let path): return "unix://\(path)" + (database != 0 ? "?db=\(database)" : "")
        case .tcp:
            let user = username.map { "\($0):***@" } ?? (password != nil ? "***@" : "")
            if isCluster {
                return "redis+cluster://\(user)" + clusterSeeds.map(Self.hostPort).joined(separator: ",")
            }
            return "redis://\(user)\(Self.hostPort(endpoint))" + (database != 0 ? "/\(database)" : "")
        }
    }

    static func hostPort(_ endpoint: Endpoint) -> String {
        switch endpoint {
        case .unix(let path): return path
        case .tcp(let host, let port): return (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        }
    }

    private static func splitQuery(_ text: Substring) -> (Substring, Substring?) {
        guard let question = text.firstIndex(of: "?") else { return (text, nil) }
        return (text[..<question], text[text.index(after: question)...])
    }

    private mutating func applyQuery(_ query: Substring?) throws(RedisError) {
        guard let query else { return }
        for item in query.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw RedisError(.invalidURL, "malformed query item") }
            switch parts[0] {
            case "db":
                guard let number = Int(parts[1]), number >= 0 else { throw RedisError(.invalidURL, "db must be a number") }
                database = number
            case "timeout":
                guard let seconds = Double(parts[1]), seconds > 0 else { throw RedisError(.invalidURL, "timeout must be seconds > 0") }
                commandTimeout = .milliseconds(Int64(seconds * 1000))
            case "cluster":
                guard parts[1] == "1" || parts[1] == "0" else { throw RedisError(.invalidURL, "cluster must be 1 or 0") }
                if parts[1] == "1", !isCluster, case .tcp = endpoint { clusterSeeds = [endpoint] }
                if parts[1] == "1", case .unix = endpoint { throw RedisError(.invalidURL, "a Redis Cluster is reached over TCP") }
            case "wait":
                guard let replicas = Int(parts[1]), replicas >= 0 else { throw RedisError(.invalidURL, "wait must be a number of replicas") }
                acknowledgeReplicas = replicas
            case "waitTimeout":
                guard let milliseconds = Int(parts[1]), milliseconds > 0 else { throw RedisError(.invalidURL, "waitTimeout must be milliseconds > 0") }
                acknowledgeTimeout = .milliseconds(milliseconds)
            case "pool":
                guard let size = Int(parts[1]), size > 0 else { throw RedisError(.invalidURL, "pool must be a positive number") }
                poolSize = size
            default:
                throw RedisError(.invalidURL, "unknown query item '\(parts[0])'")
            }
        }
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
