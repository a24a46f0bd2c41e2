import ArgumentParser
import Foundation
import GridSupervisor
import Logging
import RedisClient
import RadGridCLI
import RadGridCore
import ServiceLifecycle

/// `radgrid up`: the whole grid on this machine until SIGINT/SIGTERM; children that die are restarted.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Run the whole grid locally (redis, coordinator, router, workers, gateway, portal).")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Data and log directory (default: a new temp dir).") var dir: String?
    @Option(help: "Worker processes.") var workers: Int = 2
    @Option(help: "Slots per worker (default: cores).") var slots: Int = 0
    @Option(help: "Gateway port (0 picks a free one).") var gatewayPort: Int = 0
    @Option(help: "Portal port (0 picks a free one).") var portalPort: Int = 0
    @Option(help: "Routing policy JSON for the router (see Ops/routing.json).") var routingConfig: String?
    @Option(help: "Demo experts generated when the roster is empty.") var experts: Int = 600
    @Option(help: "Demo site code (a token is issued for it).") var site: String = "H001"
    @Option(help: "Coordinator stable age in seconds.") var stableAge: Double = 10
    @Option(help: "Model manifests for the workers' ai stage (default: Ops/models when present; 'none' for rule-based screening only).") var models: String?

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "radgrid.up")
        var options = LocalGrid.Options(directory: dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-up-\(getpid())").path)
        options.redisURL = redis.url ?? ProcessInfo.processInfo.environment["REDIS_URL"]
        options.prefix = redis.keyPrefix
        options.workers = workers
        options.slots = slots
        options.gatewayPort = gatewayPort
        options.portalPort = portalPort
        options.routingConfig = routingConfig
        options.experts = experts
        options.site = site
        options.stableAge = stableAge
        let modelFolder = models ?? (FileManager.default.fileExists(atPath: "Ops/models") ? "Ops/models" : "none")
        options.queueShards = redis.queueShards
        if modelFolder != "none" { options.models = URL(fileURLWithPath: modelFolder).standardizedFileURL.path }
        let grid = LocalGrid(options: options, logger: logger)
        do {
            try await grid.start()
        } catch {
            await grid.stop(grace: .seconds(5))
            throw error
        }
        print("""
        RadGrid is up (\(grid.children.count) processes; logs in \(options.directory)/logs)
          redis     \((try? RedisConfiguration(url: grid.redisURL).redactedURL) ?? "-")  (one user per role: \(grid.secretsDirectory)/redis-<role>.url)
          gateway   \(grid.gatewayURL)  (site \(options.site), token \(grid.token))
          portal    \(grid.portalURL)  (experts sign in here; set a password: radgridctl experts passwd ID --password-stdin)
          models    \(options.models ?? "none (rule-based screening only)")
          dimse     \(grid.dimseAddress)  (DICOM C-STORE: called AE RADGRID, calling AE \(options.site) from 127.0.0.1)
          env file  \(grid.envFile)  (REDIS_URL is the admin user's: set -a; . \(grid.envFile); set +a)
        try:  radgridctl submit DIR --gateway \(grid.gatewayURL) --token \(grid.token)
              storescu -aet \(options.site) -aec RADGRID \(grid.dimseAddress.replacingOccurrences(of: ":", with: " ")) +sd DIR
              radgridctl top   (with grid.env loaded)
              radgrid edge --upstream \(grid.gatewayURL) --token \(grid.token) --spool DIR --port 0 --dimse-port 0   (a hospital's store-and-forward edge)
        Ctrl-C stops the grid.
        """)
        fflush(nil)
        let supervisor = GridSupervisor(grid: grid, logger: logger) { line in
            print(line)
            fflush(nil)
        }
        try await ServiceGroup(configuration: .init(services: [supervisor], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
