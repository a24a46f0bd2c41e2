#if canImport(Glibc)
import Glibc
#endif
import Gateway
import Logging
import RadGridCore
import RedisClient
import Routing

/// The whole grid on one machine (`radgrid up`, `radgrid-bench e2e`): a private
/// redis-server (AOF on) unless a URL is given, a coordinator, a router, N workers and the
/// gateway, all spawned from the build directory of the running executable.
public final class LocalGrid: @unchecked Sendable {
    public struct Options: Sendable {
        public var redisURL: String?
        public var prefix: KeyPrefix = .default
        public var directory: String
        public var workers = 2
        public var slots = 0
        public var gatewayPort = 0
        public var experts = 600
        public var site = "H001"
        public var stableAge: Double = 10
        public var binDirectory = ChildDaemon.executableDirectory
        public init(directory: String) { self.directory = directory }
    }

    public let options: Options
    public private(set) var redisURL = ""
    public private(set) var gatewayURL = ""
    public private(set) var token = ""
    public private(set) var children: [ChildDaemon] = []
    private var redisServer: ChildDaemon?
    let logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "radgrid.up")) {
        self.options = options
        self.logger = logger
    }

    public var envFile: String { options.directory + "/grid.env" }

    public func start() async throws {
        let dir = options.directory
        var partial = ""
        for component in dir.split(separator: "/") {
            partial += "/" + component
            mkdir(partial, 0o755)
        }
        mkdir(dir + "/logs", 0o755)
        mkdir(dir + "/redis", 0o755)
        if let url = options.redisURL {
            redisURL = url
        } else {
            let port = ChildDaemon.freePort()
            redisServer = try ChildDaemon(name: "redis", executable: "redis-server",
                                          arguments: ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir + "/redis", "--appendonly", "yes",
                                                      "--save", "", "--daemonize", "no"], logPath: dir + "/logs/redis.log")
            redisURL = "redis://127.0.0.1:\(port)"
        }
        let client = try RedisClient(url: redisURL, logger: logger)
        defer { client.shutdown() }
        try await waitForRedis(client)

        // Demo roster and site.
        let router = ExpertRouter(redis: client, prefix: options.prefix, actor: "up", logger: logger)
        if try await router.expertIDs().isEmpty, options.experts > 0 {
            var experts = RosterGenerator.generate(count: options.experts, seed: 42)
            for i in experts.indices { experts[i].shifts = [] } // demo: everyone on duty
            try await router.upsertExperts(experts, presence: .online, heartbeatUntil: router.now + 7 * 86_400_000)
        }
        let regions = (1...60).flatMap { [RedisArgument(RosterGenerator.site($0)), RedisArgument(RosterGenerator.region(ofSite: RosterGenerator.site($0)))] }
        _ = try await client.send(["HSET", RedisArgument(options.prefix.value + "sites:region")] + regions)
        token = try await SiteTokens(client: client, prefix: options.prefix).issue(site: options.site)

        let bin = options.binDirectory
        let common = ["--redis", redisURL, "--prefix", options.prefix.value]
        let logs = dir + "/logs/"
        children.append(try ChildDaemon(name: "router", executable: bin + "/radgrid", arguments: ["router"] + common, logPath: logs + "router.log"))
        children.append(try ChildDaemon(name: "coordinator", executable: bin + "/radgrid",
                                        arguments: ["coordinator", "--stable-age", String(options.stableAge)] + common, logPath: logs + "coordinator.log"))
        for n in 1...max(1, options.workers) {
            var args = common + ["--name", "worker-\(n)-\(getpid())"]
            if options.slots > 0 { args += ["--slots", String(options.slots)] }
            children.append(try ChildDaemon(name: "worker-\(n)", executable: bin + "/radgrid-worker", arguments: args, logPath: logs + "worker-\(n).log"))
        }
        let gatewayLog = logs + "gateway.log"
        let gateway = try ChildDaemon(name: "gateway", executable: bin + "/radgrid",
                                      arguments: ["gateway", "--port", String(options.gatewayPort)] + common, logPath: gatewayLog)
        children.append(gateway)
        gatewayURL = try await waitForGateway(logPath: gatewayLog, process: gateway)
        let env = "REDIS_URL=\(redisURL)\nRADGRID_PREFIX=\(options.prefix.value)\nRADGRID_GATEWAY=\(gatewayURL)\nRADGRID_TOKEN=\(token)\nRADGRID_SITE=\(options.site)\n"
        try writeFile(envFile, env)
    }

    func waitForRedis(_ client: RedisClient) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                _ = try await client.send("PING")
                return
            } catch {
                if ContinuousClock.now > deadline { throw RadGridError(code: "up.redis", message: "redis at \(redisURL) did not answer: \(error)") }
                if let redisServer, !redisServer.isRunning { throw RadGridError(code: "up.redis", message: "redis-server exited; see \(redisServer.logPath)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func waitForGateway(logPath: String, process: ChildDaemon) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let text = readFile(logPath), let range = text.range(of: "listening on http://") {
                let rest = text[text.index(range.upperBound, offsetBy: -7)...]
                let url = rest.prefix { !$0.isWhitespace }
                if !url.isEmpty { return String(url) }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RadGridError(code: "up.gateway", message: "the gateway did not report its port; see \(logPath)")
    }

    /// Children that ended on their own since the last call.
    public func exited() -> [(String, Int32)] {
        children.compactMap { c in c.poll().map { (c.name, $0) } }
    }

    /// Stops the gateway first (no new work), then workers (they drain), coordinator, router, redis.
    public func stop(grace: Duration = .seconds(20)) async {
        for group in [["gateway"], children.map(\.name).filter { $0.hasPrefix("worker") }, ["coordinator", "router"]] {
            let members = children.filter { group.contains($0.name) }
            for child in members { child.signal(SIGTERM) }
            for child in members where !(await child.wait(timeout: grace)) {
                child.signal(SIGKILL)
                _ = await child.wait(timeout: .seconds(5))
            }
        }
        if let redisServer { await redisServer.stop(grace: .seconds(10)) }
    }
}

func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

func writeFile(_ path: String, _ text: String) throws {
    guard let f = fopen(path, "w") else { throw RadGridError(code: "up.write", message: "cannot write \(path)") }
    defer { fclose(f) }
    _ = Array(text.utf8).withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
}
