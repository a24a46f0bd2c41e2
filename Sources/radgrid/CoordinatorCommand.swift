import ArgumentParser
import Coordinator
import CriticalResults
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import Routing
import ServiceLifecycle
import Telemetry

/// `radgrid coordinator`: the study state machine's driver (streams and sweeper).
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coordinator", abstract: "Fan studies out to workers, hand screened cases to the router, keep every study moving.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Commit a study when its last instance is this many seconds old.") var stableAge: Double = 10
    @Option(help: "Seconds after a change before the sweeper repairs a lost follow-up.") var repairAfter: Double = 10
    @Option(help: "Seconds between liveness checks of queued and routing studies.") var liveCheck: Double = 30
    @Option(help: "Seconds before stream entries of a dead coordinator are taken over.") var claimIdle: Double = 30
    @Flag(help: "Keep compressed instances after the report (default: delete them).") var keepBlobs = false
    @Option(help: "Routing policy JSON (SLAs, case weights); defaults built in.") var routingConfig: String?
    @Option(help: "Consumer name in the coordinators group (default coordinator-<pid>).") var name: String?
    @Option(help: "Prometheus /metrics port (0 = off).") var metricsPort: Int = 0
    @Option(help: "Critical-results policy JSON (retries, escalation times, retention; Ops/critical-results.json form); defaults built in.")
    var criticalPolicy: String?

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.coordinator")
        var settings = CoordinatorSettings()
        settings.prefix = redis.keyPrefix
        settings.queueShards = redis.queueShards
        settings.lifecycle.stableAge = Self.milliseconds(stableAge)
        settings.lifecycle.repairAfter = Self.milliseconds(repairAfter)
        settings.lifecycle.liveCheckEvery = Self.milliseconds(liveCheck)
        settings.lifecycle.deleteBlobsWhenReported = !keepBlobs
        settings.claimIdle = .milliseconds(Self.milliseconds(claimIdle))
        if let name { settings.consumerName = name }
        if let routingConfig { settings.routing = try RoutingConfig.load(path: routingConfig) }
        // Checked before anything starts: a bad policy file is an error naming its field.
        let policy = try criticalPolicy.map { try CriticalResultPolicy.load(path: $0) } ?? .standard
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        // Critical results are delivered and escalated by every coordinator (leader-free, leased).
        let notifier = CriticalResultNotifier(store: CriticalResultStore(client: client, prefix: redis.keyPrefix, policy: policy),
                                              logger: Logger(label: "radgrid.critical"))
        var services: [any Service] = [client, Coordinator(client: client, settings: settings, logger: logger), notifier]
        if metricsPort > 0 { services.append(Telemetry.metricsServer(host: "127.0.0.1", port: metricsPort, logger: logger)) }
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }

    static func milliseconds(_ seconds: Double) -> Int64 { Int64((max(0.05, seconds) * 1000).rounded()) }
}
