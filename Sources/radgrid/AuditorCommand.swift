import ArgumentParser
import Audit
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import ServiceLifecycle

/// `radgrid auditor`: signs checkpoints of every audit chain into an append-only directory
/// outside Redis, at start and then periodically (`radgridctl audit verify --checkpoints`
/// checks Redis against them).
struct AuditorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "auditor", abstract: "Write signed audit checkpoints outside Redis, periodically.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Directory of the checkpoint files (created 0700).") var checkpoints: String
    @Option(help: "Ed25519 private key file (created 0600 when missing).") var key: String
    @Option(help: "Public key file written beside it (what verifiers are given).") var publicKey: String
    @Option(help: "Seconds between checkpoints.") var interval = 300
    @Option(help: "Directory of the audit archives: once a day, entries older than --archive-after-days leave Redis for it.") var archive: String?
    @Option(help: "Days an entry stays in Redis before it is archived (with --archive).") var archiveAfterDays: Int?

    func validate() throws {
        guard (archive == nil) == (archiveAfterDays == nil) else { throw ValidationError("--archive and --archive-after-days go together") }
        if let archiveAfterDays, archiveAfterDays < 1 { throw ValidationError("--archive-after-days must be at least 1") }
    }

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "radgrid.auditor")
        let signing = try CheckpointKey.loadOrCreate(privateKeyPath: key, publicKeyPath: publicKey)
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        let checkpointer = AuditCheckpointer(client: client, prefix: redis.keyPrefix, directory: checkpoints, key: signing,
                                             interval: .seconds(max(1, interval)), logger: logger)
        var services: [any Service] = [client, checkpointer]
        if let archive, let archiveAfterDays {
            services.append(AuditArchiver(client: client, prefix: redis.keyPrefix, directory: archive, afterDays: archiveAfterDays, logger: logger))
        }
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
