import ArgumentParser
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import ServiceLifecycle
import SupervisionFeed

/// `radgrid feed`: the regulator's supervision feed. Pushes every audit entry (as FHIR
/// AuditEvent NDJSON) and each closed day's service statistics to the platform's endpoint,
/// signed, retried, resuming from the last acknowledged position after a restart.
struct FeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "feed", abstract: "Push the audit trail and the daily service statistics to the supervision platform, periodically.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "The platform's HTTPS URL the batches are POSTed to.") var endpoint: String
    @Option(help: "File holding the shared secret the batches are signed with (HMAC-SHA256; surrounding whitespace ignored).") var secretFile: String
    @Option(help: "The feed's name: its position in Redis is kept per name (default: the endpoint's host).") var name: String?
    @Option(help: "Seconds between pushes.") var interval: Double = 30
    @Option(help: "PEM file of the CA certificates the endpoint's certificate must chain to (default: the system's).") var caFile: String?
    @Option(help: "Audit entries per batch.") var batch = 500
    @Option(help: "The auditor's signed checkpoints (DIR/audit/checkpoints under radgrid up): each new one is pushed as signed.") var checkpoints: String?

    func validate() throws {
        guard interval > 0, interval <= 86_400 else { throw ValidationError("--interval must be 0 < S <= 86400") }
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be 1...10000") }
    }

    func run() async throws {
        LogSetup.bootstrap()
        let logger = Logger(label: "radgrid.feed")
        var settings = try SupervisionFeedSettings(endpoint: endpoint, name: name, secret: try SupervisionFeedSettings.loadSecret(path: secretFile))
        settings.batchSize = batch
        settings.caFile = caFile
        settings.checkpoints = checkpoints
        if endpoint.lowercased().hasPrefix("http:") {
            logger.warning("the supervision endpoint is plain http: audit entries cross the network unencrypted")
        }
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        let pusher: SupervisionFeedPusher
        do { pusher = try SupervisionFeedPusher(client: client, prefix: redis.keyPrefix, settings: settings, logger: logger) } catch {
            client.shutdown()
            throw error
        }
        let service = SupervisionFeedService(pusher: pusher, interval: .milliseconds(Int64(interval * 1000)), logger: logger)
        try await ServiceGroup(configuration: .init(services: [client, service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
