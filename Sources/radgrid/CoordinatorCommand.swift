import ArgumentParser
import Coordinator
import Foundation
import Logging
import RadGridCore
import RedisClient
import Routing
import ServiceLifecycle
import Telemetry

/// `radgrid coordinator`: committed studies → tasks, screened studies → router, case events → study state.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coordinator", abstract: "Fan studies out to workers and hand screened cases to the router.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Commit a study when its last instance is this many seconds old.") var stableAge: Double = 10
    @Flag(help: "Keep compressed instances after the report (default: delete them).") var keepBlobs = false
    @Option(help: "Routing policy JSON (for the case weight table); defaults built in.") var routingConfig: String?
    @Option(help: "Consumer name in the coordinators group (default coordinator-<pid>).") var name: String?
    @Option(help: "Prometheus /metrics port (0 = off).") var metricsPort: Int = 0

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.coordinator")
        var settings = CoordinatorSettings()
        settings.prefix = redis.keyPrefix
        settings.stableAge = .milliseconds(Int64(max(0.1, stableAge) * 1000))
        settings.deleteBlobsWhenReported = !keepBlobs
        if let name { settings.consumerName = name }
        if let routingConfig { settings.routing = try RoutingConfig.load(path: routingConfig) }
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        var services: [any Service] = [Coordinator(client: client, settings: settings, logger: logger)]
        if metricsPort > 0 { services.append(Telemetry.metricsServer(host: "127.0.0.1", port: metricsPort, logger: logger)) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        client.shutdown()
    }
}
