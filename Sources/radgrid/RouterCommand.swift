import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import Routing
import ServiceLifecycle
import Telemetry

/// `radgrid router`: the expert router daemon (see docs/ROUTING.md).
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Route finished cases to remote imaging experts."
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "Routing policy JSON (SLAs, timeouts, margins); defaults built in.")
    var config: String?

    @Option(help: "Consumer name in the intake group (default router-<pid>).")
    var name: String?

    @Option(help: "Prometheus /metrics port (0 = off).") var metricsPort: Int = 0

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.router")
        let policy = try config.map { try RoutingConfig.load(path: $0) } ?? .standard
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        let consumer = name ?? "router-\(getpid())"
        let router = ExpertRouter(redis: client, prefix: redis.keyPrefix, config: policy, actor: consumer, logger: logger)
        let service = RouterService(router: router, consumer: consumer, logger: logger)
        var services: [any Service] = [client, service]
        if metricsPort > 0 { services.append(Telemetry.metricsServer(host: "127.0.0.1", port: metricsPort, logger: logger)) }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
