#if canImport(Glibc)
import Glibc
#endif
import BlobSealing
import DIMSEGateway
import GridContract
import Logging
import RadGridCore
import RedisClient
import Routing
import ServiceLifecycle
import StudyStore
import Synchronization

/// The whole grid on one machine (`radgrid up`, the benchmarks, the end-to-end tests): a
/// private redis-server (AOF on) unless a URL is given, a router, a coordinator, N workers,
/// the gateway and the expert portal, spawned from the build directory of the running executable, and kept
/// alive: a child that dies is restarted with backoff, and said so.
public final class LocalGrid: Sendable {
    public struct Options: Sendable {
        public var redisURL: String?
        public var prefix: KeyPrefix = .default
        public var directory: String
        public var workers = 2
        public var slots = 0
        /// 0 picks a free port once, so a restarted gateway keeps its URL.
        public var gatewayPort = 0
        /// The expert portal's port; 0 picks a free one once.
        public var portalPort = 0
        /// The DICOM network gateway's port (C-ECHO/C-STORE); 0 picks a free one once.
        public var dimsePort = 0
        public var experts = 600
        public var site = "H001"
        public var stableAge: Double = 10
        /// Task lease of the workers (seconds); 0 keeps the workers' default.
        public var lease: Double = 0
        /// Routing policy JSON for the router (`Ops/routing.json` form); nil: the built-in policy.
        public var routingConfig: String?
        /// Extra arguments for every coordinator (tests shorten the sweeper's timings).
        public var coordinatorArguments: [String] = []
        public var coordinators = 1
        /// Restart children that die (off in tests that check a death).
        public var restart = true
        /// Seconds between signed audit checkpoints (one is written at start).
        public var auditInterval = 300
        /// Audit entries older than this many days move from Redis to `DIR/audit/archive` (daily).
        public var auditArchiveAfterDays = 90
        /// Model manifests folder handed to every worker (`--models`); nil: rule-based only.
        public var models: String?
        /// Shards of each task queue (`--queue-shards`): every child gets the same number.
        public var queueShards = 1
        public var binDirectory = ChildProcess.executableDirectory
        public init(directory: String) { self.directory = directory }
    }

    /// How to start one child again.
    struct ChildSpec: Sendable {
        var name: String
        var executable: String
        var arguments: [String]
        var logPath: String
        /// The child's own Redis URL (its role's user), given through the environment (`REDIS_URL`), never argv.
        var redisURL: String
        /// More environment for this child only (the blob key file for those that seal or open blobs).
        var environment: [String: String] = [:]
    }

    struct Running: Sendable {
        var spec: ChildSpec
        var process: ChildProcess
        var startedAt: ContinuousClock.Instant
        var restarts = 0
        /// When a dead child may be started again (backoff); nil while it runs.
        var restartAt: ContinuousClock.Instant?
        /// Stopped on purpose: not restarted.
        var stopped = false
    }

    struct State: Sendable {
        var redisURL = ""
        var roleURLs: [GridRole: String] = [:]
        var gatewayURL = ""
        var portalURL = ""
        var dimseAddress = ""
        var token = ""
        var children: [Running] = []
        var redisServer: ChildProcess?
        var stopping = false
    }

    public let options: Options
    let state = Mutex(State())
    let logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "radgrid.up")) {
        self.options = options
        self.logger = logger
    }

    /// A URL with every right (the given one, or the supervisor user of the private server):
    /// for tests and benchmarks that look inside. Operators use the admin URL in `grid.env`.
    public var redisURL: String { state.withLock { $0.redisURL } }
    /// The URL of one role's Redis user (`DIR/secrets/redis-<role>.url`).
    public func redisURL(for role: GridRole) -> String { state.withLock { $0.roleURLs[role] ?? $0.redisURL } }
    /// Where the role URLs are kept (0700; each file 0600).
    public var secretsDirectory: String { options.directory + "/secrets" }
    /// The blob key file (0600), created on the first start; only the gateway, the DICOM
    /// gateway, the workers and the portal are given it (`RADGRID_BLOB_KEYS`).
    public var blobKeysFile: String { secretsDirectory + "/blob-keys.json" }
    public var gatewayURL: String { state.withLock { $0.gatewayURL } }
    public var portalURL: String { state.withLock { $0.portalURL } }
    /// `host:port` of the DICOM network gateway (AE title RADGRID).
    public var dimseAddress: String { state.withLock { $0.dimseAddress } }
    public var token: String { state.withLock { $0.token } }
    public var envFile: String { options.directory + "/grid.env" }
    /// Where the auditor signs checkpoints of the audit chains, and its public key.
    public var auditCheckpoints: String { options.directory + "/audit/checkpoints" }
    public var auditPublicKey: String { options.directory + "/audit/checkpoint.pub" }
    /// Where the auditor archives old audit entries (zstd, hash-linked segments).
    public var auditArchive: String { options.directory + "/audit/archive" }
    /// The children now running (or waiting for a restart), by name.
    public var children: [(name: String, process: ChildProcess)] { state.withLock { $0.children.map { ($0.spec.name, $0.process) } } }
    public func child(named name: String) -> ChildProcess? { state.withLock { $0.children.first { $0.spec.name == name }?.process } }
    public var redisServer: ChildProcess? { state.withLock { $0.redisServer } }

    public func start() async throws {
        let dir = options.directory
        try Files.makeDirectories(dir, mode: 0o700)
        try Files.makeDirectories(dir + "/logs", mode: 0o700)
        try Files.makeDirectories(dir + "/redis", mode: 0o700)
        let users = RedisUsers(secretsDirectory: secretsDirectory, policy: RedisAccessPolicy(prefix: options.prefix), logger: logger)
        var url: String
        let endpoint: String
        if let given = options.redisURL {
            url = given
            endpoint = RedisUsers.endpoint(of: given)
        } else {
            let port = ChildProcess.freePort()
            let server = try ChildProcess(name: "redis", executable: "redis-server", arguments: privateServerArguments(port: port), outputPath: dir + "/logs/redis.log")
            state.withLock { $0.redisServer = server }
            endpoint = "redis://127.0.0.1:\(port)"
            // A directory that ran before: its ACL file switched the default user off.
            url = users.savedURL("supervisor").map { RedisUsers.rebase($0, onto: endpoint) } ?? endpoint
        }
        state.withLock { $0.redisURL = url }
        var client = try RedisClient(url: url, logger: logger)
        defer { client.shutdown() }
        try await waitForRedis(client)
        if options.redisURL == nil, url == endpoint {
            url = try await users.lockPrivateServer(client: client, endpoint: endpoint)
            client.shutdown()
            client = try RedisClient(url: url, logger: logger)
            state.withLock { $0.redisURL = url }
        }
        // Least privilege: one user per role, each child with its own URL.
        var roleURLs: [GridRole: String]
        do {
            roleURLs = try await users.provision(client: client, endpoint: endpoint)
            if options.redisURL == nil { _ = try await client.send("ACL", "SAVE").throwingServerError() }
        } catch {
            guard options.redisURL != nil else { throw error }
            // An operator's Redis where this URL may not create users: every child gets it.
            logger.warning("cannot create per-role Redis users with the given URL; every process uses it", metadata: ["error": "\(error)"])
            roleURLs = Dictionary(uniqueKeysWithValues: GridRole.allCases.map { ($0, url) })
        }
        state.withLock { $0.roleURLs = roleURLs }

        // Demo roster and site.
        let router = ExpertRouter(redis: client, prefix: options.prefix, actor: "up", logger: logger)
        if try await router.expertIDs().isEmpty, options.experts > 0 {
            var experts = RosterGenerator.generate(count: options.experts, seed: 42)
            for i in experts.indices { experts[i].shifts = [] } // demo: everyone on duty
            try await router.upsertExperts(experts, presence: .online, heartbeatUntil: router.now + 7 * 86_400_000)
        }
        let keys = GridKeys(prefix: options.prefix)
        let regions = (1...60).flatMap { [RedisArgument(RosterGenerator.site($0)), RedisArgument(RosterGenerator.region(ofSite: RosterGenerator.site($0)))] }
        _ = try await client.send(["HSET", RedisArgument(keys.siteRegions)] + regions)
        let token = try await SiteTokens(client: client, prefix: options.prefix).issue(site: options.site)
        state.withLock { $0.token = token }
        // The demo site's PACS calls as AE title = its site code, from this machine.
        try await SiteNetwork(client: client, prefix: options.prefix)
            .register(aeTitle: options.site, SiteNetwork.Caller(site: options.site, addresses: ["127.0.0.1", "::1"]))

        // Instances are sealed at rest under keys kept here, never in Redis.
        try Files.makeDirectories(secretsDirectory, mode: 0o700)
        if try BlobKeyring.createFileIfMissing(at: blobKeysFile) { logger.info("created the blob key file", metadata: ["file": "\(blobKeysFile)"]) }
        let blobKeys = [BlobKeyring.environmentVariable: blobKeysFile]

        let bin = options.binDirectory
        if let models = options.models { try await checkModels(models, bin: bin, logPath: dir + "/logs/models-check.log") }
        let common = ["--prefix", options.prefix.value]
        let logs = dir + "/logs/"
        let routerArguments = ["router"] + common + (options.routingConfig.map { ["--config", $0] } ?? [])
        var specs = [ChildSpec(name: "router", executable: bin + "/radgrid", arguments: routerArguments, logPath: logs + "router.log", redisURL: roleURLs[.router]!)]
        for n in 1...max(1, options.coordinators) {
            let name = options.coordinators > 1 ? "coordinator-\(n)" : "coordinator"
            specs.append(ChildSpec(name: name, executable: bin + "/radgrid",
                                   arguments: ["coordinator", "--stable-age", String(options.stableAge), "--name", "\(name)-\(getpid())"] + options.coordinatorArguments + common,
                                   logPath: logs + name + ".log", redisURL: roleURLs[.coordinator]!))
        }
        for n in 1...max(1, options.workers) {
            var args = common + ["--name", "worker-\(n)-\(getpid())"]
            if options.slots > 0 { args += ["--slots", String(options.slots)] }
            if options.lease > 0 { args += ["--lease", String(options.lease)] }
            if let models = options.models { args += ["--models", models] }
            specs.append(ChildSpec(name: "worker-\(n)", executable: bin + "/radgrid-worker", arguments: args, logPath: logs + "worker-\(n).log", redisURL: roleURLs[.worker]!,
                                   environment: blobKeys))
        }
        // Signed audit checkpoints outside Redis: DIR/audit/checkpoints, DIR/audit/checkpoint.pub.
        try Files.makeDirectories(dir + "/audit", mode: 0o700)
        specs.append(ChildSpec(name: "auditor", executable: bin + "/radgrid",
                               arguments: ["auditor", "--checkpoints", auditCheckpoints, "--key", dir + "/audit/checkpoint.key",
                                           "--public-key", auditPublicKey, "--interval", String(options.auditInterval),
                                           "--archive", auditArchive, "--archive-after-days", String(options.auditArchiveAfterDays)] + common,
                               logPath: logs + "auditor.log", redisURL: roleURLs[.auditor]!))
        for spec in specs {
            let process = try spawn(spec)
            state.withLock { $0.children.append(Running(spec: spec, process: process, startedAt: .now)) }
        }
        let (gatewayURL, gatewayPort) = try await startListener(name: "gateway", role: .gateway, port: options.gatewayPort, avoiding: [], environment: blobKeys) { ["gateway", "--port", String($0)] + common }
        let (portalURL, portalPort) = try await startListener(name: "portal", role: .portal, port: options.portalPort, avoiding: [gatewayPort], environment: blobKeys) { ["portal", "--port", String($0)] + common }
        let (dimseURL, _) = try await startListener(name: "dimse", role: .dimse, port: options.dimsePort, avoiding: [gatewayPort, portalPort], scheme: "dicom://",
                                                    environment: blobKeys) {
            ["dimse", "--port", String($0), "--stable-age", String(options.stableAge)] + common
        }
        let dimseAddress = String(dimseURL.dropFirst("dicom://".count))
        state.withLock {
            $0.gatewayURL = gatewayURL
            $0.portalURL = portalURL
            $0.dimseAddress = dimseAddress
        }
        let env = "REDIS_URL=\(roleURLs[.admin]!)\nRADGRID_PREFIX=\(options.prefix.value)\nRADGRID_GATEWAY=\(gatewayURL)\nRADGRID_TOKEN=\(token)\nRADGRID_SITE=\(options.site)\nRADGRID_PORTAL=\(portalURL)\nRADGRID_DIMSE=\(dimseAddress)\nRADGRID_QUEUE_SHARDS=\(options.queueShards)\n"
        try Files.write(envFile, env, mode: 0o600)
    }

    /// Starts a child that listens on a port and waits for its URL. With no fixed port it takes
    /// a free one, once, so a restarted child keeps its URL; if the child dies before it
    /// listens (another process took the port in between), it tries another port, three times.
    func startListener(name: String, role: GridRole, port fixed: Int, avoiding: Set<Int>, scheme: String = "http://",
                       environment: [String: String] = [:], arguments: (Int) -> [String]) async throws -> (url: String, port: Int) {
        let logPath = options.directory + "/logs/\(name).log"
        var attempt = 0
        while true {
            attempt += 1
            var port = fixed
            while port == 0 || (fixed == 0 && avoiding.contains(port)) { port = ChildProcess.freePort() }
            let spec = ChildSpec(name: name, executable: options.binDirectory + "/radgrid", arguments: arguments(port), logPath: logPath, redisURL: redisURL(for: role),
                                 environment: environment)
            let process = try spawn(spec)
            state.withLock { state in
                state.children.removeAll { $0.spec.name == name }
                state.children.append(Running(spec: spec, process: process, startedAt: .now))
            }
            do {
                return (try await waitForListening(child: name, logPath: logPath, scheme: scheme), port)
            } catch {
                guard fixed == 0, attempt < 3, !process.isRunning else { throw error }
                logger.warning("\(name) did not start on port \(port); trying another", metadata: ["attempt": "\(attempt)"])
            }
        }
    }

    /// The workers' models, checked once before any worker starts (manifests, checksums, a
    /// compile each): a bad model stops `radgrid up` with its reason instead of a worker
    /// restarting in a loop. The worker binary checks, so this process never links OpenVINO.
    func checkModels(_ folder: String, bin: String, logPath: String) async throws {
        let check = try ChildProcess(name: "models-check", executable: bin + "/radgrid-worker", arguments: ["--models", folder, "--check-models"],
                                     outputPath: logPath)
        let status = await check.exit(timeout: .seconds(120))
        guard status == 0 else {
            if status == nil { check.signal(SIGKILL) }
            let reason = Files.read(logPath)?.split(separator: "\n").last.map(String.init) ?? "no output"
            throw RadGridError(code: "up.models", message: "the models in \(folder) were refused: \(reason)")
        }
        logger.info("models checked", metadata: ["folder": "\(folder)"])
    }

    func spawn(_ spec: ChildSpec) throws -> ChildProcess {
        var environment = ProcessEnvironment.current
        environment[RedisEndpoint.environmentVariable] = spec.redisURL
        environment["RADGRID_QUEUE_SHARDS"] = String(options.queueShards)
        // The blob keys only where the spec gives them, whatever this process inherited.
        environment[BlobKeyring.environmentVariable] = nil
        environment.merge(spec.environment) { _, given in given }
        return try ChildProcess(name: spec.name, executable: spec.executable, arguments: spec.arguments, environment: environment, outputPath: spec.logPath)
    }

    func waitForRedis(_ client: RedisClient) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                _ = try await client.send("PING")
                return
            } catch {
                if ContinuousClock.now > deadline { throw RadGridError(code: "up.redis", message: "redis at \(redisURL) did not answer: \(error)") }
                if let server = redisServer, !server.isRunning { throw RadGridError(code: "up.redis", message: "redis-server exited; see \(options.directory)/logs/redis.log") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The URL a child printed in its "listening on http://…" (or dicom://…) line.
    func waitForListening(child name: String, logPath: String, scheme: String = "http://") async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            // The last "listening on" line: a restarted gateway appends a new one.
            if let text = Files.read(logPath),
               let line = text.split(separator: "\n").last(where: { $0.firstRange(of: "listening on " + scheme) != nil }),
               let range = line.firstRange(of: scheme) {
                let url = line[range.lowerBound...].prefix { !$0.isWhitespace }
                if !url.isEmpty { return String(url) }
            }
            if child(named: name)?.isRunning == false { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RadGridError(code: "up.\(name)", message: "the \(name) did not report its port; see \(logPath)")
    }

    // MARK: Supervision

    /// What happened to one child in a supervision pass.
    public enum ChildEvent: Sendable, Equatable {
        case exited(name: String, status: Int32, restartIn: Duration?)
        case restarted(name: String, restarts: Int)
    }

    /// One pass: notes children that died and restarts those whose backoff has passed
    /// (1 s, doubling to 30 s; reset after a minute of running).
    public func supervise() -> [ChildEvent] {
        var events: [ChildEvent] = []
        let now = ContinuousClock.now
        let restart = options.restart
        var toStart: [Int] = []
        state.withLock { state in
            guard !state.stopping else { return }
            for i in state.children.indices {
                var child = state.children[i]
                if child.restartAt == nil, !child.stopped, !child.process.isRunning {
                    let status = child.process.exitCode ?? -1
                    if now - child.startedAt > .seconds(60) { child.restarts = 0 }
                    let delay = Duration.seconds(min(30, 1 << min(child.restarts, 5)))
                    child.restartAt = restart ? now + delay : nil
                    if !restart { child.stopped = true }
                    events.append(.exited(name: child.spec.name, status: status, restartIn: restart ? delay : nil))
                }
                if let at = child.restartAt, at <= now { toStart.append(i) }
                state.children[i] = child
            }
        }
        for i in toStart {
            let spec = state.withLock { $0.children[i].spec }
            do {
                let process = try spawn(spec)
                let restarts = state.withLock { state -> Int in
                    state.children[i].process = process
                    state.children[i].startedAt = .now
                    state.children[i].restartAt = nil
                    state.children[i].restarts += 1
                    return state.children[i].restarts
                }
                events.append(.restarted(name: spec.name, restarts: restarts))
            } catch {
                logger.error("cannot restart \(spec.name)", metadata: ["error": "\(error)"])
                state.withLock { $0.children[i].restartAt = .now + .seconds(5) }
            }
        }
        return events
    }

    /// Stops the gateway first (no new work), then workers (they drain), coordinators, router and auditor, redis.
    public func stop(grace: Duration = .seconds(20)) async {
        let children = state.withLock { state -> [Running] in
            state.stopping = true
            return state.children
        }
        let workers = children.filter { $0.spec.name.hasPrefix("worker") }
        let control = children.filter { $0.spec.name.hasPrefix("coordinator") || $0.spec.name == "router" || $0.spec.name == "auditor" }
        for group in [children.filter { ["gateway", "portal", "dimse"].contains($0.spec.name) }, workers, control] {
            await withTaskGroup(of: Void.self) { tasks in
                for child in group { tasks.addTask { await child.process.stop(grace: grace) } }
            }
        }
        if let server = redisServer {
            // What the role users were refused, for whoever reads the logs.
            do {
                let denials = try await aclDenials()
                try Files.write(options.directory + "/logs/redis-acl.log", denials.map { $0 + "\n" }.joined(), mode: 0o600)
            } catch {
                // Stopping goes on; the operator hears that the record of refusals is missing.
                logger.warning("cannot record Redis's ACL refusals", metadata: ["error": "\(error)"])
            }
            await server.stop(grace: .seconds(10))
        }
    }

    /// Commands Redis refused to a role user since it started (`ACL LOG`), one line each.
    public func aclDenials() async throws -> [String] {
        let client = try RedisClient(url: redisURL, logger: logger)
        defer { client.shutdown() }
        return try await RedisUsers.denials(client: client)
    }

    func privateServerArguments(port: Int) throws -> [String] {
        let dir = options.directory
        // The users live in an ACL file so a restarted server keeps them (empty at first: the
        // default user until `radgrid up` creates its own and switches the default off).
        let aclFile = dir + "/redis/users.acl"
        if Files.read(aclFile) == nil { try Files.write(aclFile, "", mode: 0o600) }
        return ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir + "/redis", "--appendonly", "yes", "--aclfile", aclFile,
                "--save", "", "--daemonize", "no", "--maxmemory", "2gb", "--maxmemory-policy", "noeviction"]
    }

    /// Restarts the private redis-server (same port and data: the AOF is replayed).
    public func restartRedis() async throws {
        guard let server = redisServer else { return }
        let port = redisURL.split(separator: ":").last.map(String.init) ?? ""
        await server.stop(grace: .seconds(10))
        let dir = options.directory
        let fresh = try ChildProcess(name: "redis", executable: "redis-server", arguments: privateServerArguments(port: Int(port) ?? 0),
                                     outputPath: dir + "/logs/redis.log")
        state.withLock { $0.redisServer = fresh }
    }
}

/// A `Service` that keeps a `LocalGrid` alive until graceful shutdown, then stops it.
public struct GridSupervisor: Service {
    public let grid: LocalGrid
    let logger: Logger
    let report: @Sendable (String) -> Void

    public init(grid: LocalGrid, logger: Logger, report: @escaping @Sendable (String) -> Void) {
        self.grid = grid
        self.logger = logger
        self.report = report
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                for event in grid.supervise() {
                    switch event {
                    case .exited(let name, let status, let restartIn):
                        report("radgrid up: \(name) exited with status \(status)" + (restartIn.map { "; restarting in \($0.components.seconds) s" } ?? ""))
                    case .restarted(let name, let restarts):
                        report("radgrid up: \(name) restarted (\(restarts) restart\(restarts == 1 ? "" : "s") in a row)")
                    }
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        report("radgrid up: stopping…")
        await grid.stop()
        report("radgrid up: stopped")
    }
}
