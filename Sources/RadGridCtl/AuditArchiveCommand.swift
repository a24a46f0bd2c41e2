import ArgumentParser
import Audit
import Foundation
import Logging
import RadGridCLI
import RadGridCore
import RedisClient

/// `radgridctl audit archive --dir DIR (--before T | --older-than-days N) [--json]`: move every
/// chain's entries older than the cut-off out of Redis into hash-linked zstd segments under DIR
/// (`audit verify --archive DIR` checks them). Audited in the `admin` chain; exit code 2 when a
/// chain had to stay in Redis (broken, or its archive disagrees with Redis).
struct AuditArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "archive",
                                                    abstract: "Move audit entries older than a cut-off from Redis into hash-linked zstd files.")
    @OptionGroup var redis: RedisOptions
    @Option(help: "Archive directory (created 0700; one subdirectory per chain). Keep it off this machine's disk too: it is the record.") var dir: String
    @Option(help: "Archive entries recorded before this time: 2026-11-01, 2026-11-01T00:00:00Z or milliseconds since 1970.") var before: String?
    @Option(help: "Archive entries recorded more than this many days ago.") var olderThanDays: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (before == nil) != (olderThanDays == nil) else { throw ValidationError("give one of --before and --older-than-days") }
        if let before, AuditExportCommand.milliseconds(before) == nil { throw ValidationError("--before: a date, an ISO 8601 time or milliseconds") }
        if let olderThanDays, olderThanDays < 0 { throw ValidationError("--older-than-days must not be negative") }
    }

    func run() async throws {
        let cutoff = before.flatMap(AuditExportCommand.milliseconds) ?? WallClock.nowMilliseconds() - Int64(olderThanDays ?? 0) * 86_400_000
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        let result: AuditArchiveResult
        do {
            result = try await AuditArchive.archive(client: client, prefix: redis.keyPrefix, directory: dir, beforeMilliseconds: cutoff,
                                                    logger: Logger(label: "radgridctl.audit"))
        } catch let error as any CodedError {
            throw CommandFailure(error)
        }
        if result.entries > 0 {
            try await AdminAudit.record("admin.audit.archived", details: result.details, client: client, prefix: redis.keyPrefix)
        }
        if json {
            print(try JSONOutput.string(result))
        } else {
            print("archived \(result.entries) entries of \(result.chains) chain(s) in \(result.segments) new segment(s) to \(dir)")
            for problem in result.problems {
                print("  chain \(problem.chain) entry \(problem.entryID ?? "-"): \(problem.reason)")
            }
        }
        if !result.problems.isEmpty { throw ExitCode(2) }
    }
}
