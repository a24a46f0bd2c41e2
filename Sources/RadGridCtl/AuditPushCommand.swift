import ArgumentParser
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import SupervisionFeed

/// `radgridctl audit push --endpoint URL --secret-file FILE [--name NAME]`: what `radgrid feed`
/// does periodically, once: every audit entry not yet acknowledged by the endpoint and the
/// statistics of every day closed since, then exit (non-zero when the endpoint refuses or stays
/// unreachable). Shares the position with a `radgrid feed` of the same name.
struct AuditPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "push", abstract: "Push pending audit entries (FHIR AuditEvent NDJSON) and closed days' statistics to the supervision endpoint once.")
    @OptionGroup var redis: RedisOptions
    @Option(help: "The platform's HTTPS URL the batches are POSTed to.") var endpoint: String
    @Option(help: "File holding the shared secret the batches are signed with (HMAC-SHA256; surrounding whitespace ignored).") var secretFile: String
    @Option(help: "The feed's name: its position in Redis is kept per name (default: the endpoint's host).") var name: String?
    @Option(help: "PEM file of the CA certificates the endpoint's certificate must chain to (default: the system's).") var caFile: String?
    @Option(help: "Audit entries per batch.") var batch = 500
    @Option(help: "The auditor's signed checkpoints (DIR/audit/checkpoints under radgrid up): each new one is pushed as signed.") var checkpoints: String?
    @Option(help: "Attempts per batch on network errors, 5xx and 429 before giving up.") var attempts = 5

    func validate() throws {
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be 1...10000") }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1") }
    }

    func run() async throws {
        let logger = Logger(label: "radgridctl.feed")
        var settings: SupervisionFeedSettings
        do {
            settings = try SupervisionFeedSettings(endpoint: endpoint, name: name, secret: try SupervisionFeedSettings.loadSecret(path: secretFile))
        } catch let error as any CodedError {
            throw CommandFailure(error)
        }
        settings.batchSize = batch
        settings.caFile = caFile
        settings.checkpoints = checkpoints
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        let pusher: SupervisionFeedPusher
        do { pusher = try SupervisionFeedPusher(client: client, prefix: redis.keyPrefix, settings: settings, logger: logger) } catch let error as any CodedError { throw CommandFailure(error) }
        let summary: SupervisionFeedPusher.Summary
        do {
            summary = try await pusher.pushPending(maxAttempts: attempts)
        } catch {
            try? await pusher.shutdown()
            if let coded = error as? any CodedError { throw CommandFailure(coded) }
            throw error
        }
        try await pusher.shutdown()
        print("pushed \(summary.entries) audit entries in \(summary.batches) batch(es), \(summary.statisticsDays) day(s) of statistics and \(summary.checkpoints) signed checkpoint(s) (feed \(settings.name))")
    }
}
