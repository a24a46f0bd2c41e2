import ArgumentParser
import Audit
import Foundation
import RadGridCLI
import RadGridCore
import RedisClient

/// `radgridctl audit verify`: walk every audit chain and report any edited, inserted or
/// deleted entry. Exit code 2 when tampering is found.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Inspect and verify the hash-chained audit trail.",
        subcommands: [Verify.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recompute every hash and check every link of every chain.")
        @OptionGroup var redis: RedisOptions
        @Flag(help: "Print one JSON object.") var json = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let result = try await AuditTrail.verify(client: client, prefix: redis.keyPrefix)
            if json {
                print(try JSONOutput.string(result))
            } else {
                print("\(result.chains) chain(s), \(result.entries) entries: \(result.isIntact ? "intact" : "TAMPERED")")
                for problem in result.problems {
                    print("  chain \(problem.chain) entry \(problem.entryID ?? "-"): \(problem.reason)")
                }
            }
            if !result.isIntact { throw ExitCode(2) }
        }
    }
}

/// `radgridctl study UID`: a study's timeline from every audit chain.
struct StudyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "study", abstract: "Show a study's audit timeline.")
    @OptionGroup var redis: RedisOptions
    @Argument(help: "Study Instance UID.") var studyInstanceUID: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        let timeline = try await AuditTrail.timeline(client: client, prefix: redis.keyPrefix, study: studyInstanceUID)
        if json {
            print(try JSONOutput.string(StudyTimelineOutput(study: studyInstanceUID, timeline: timeline)))
            return
        }
        guard !timeline.isEmpty else {
            print("no audit entries for study \(studyInstanceUID)")
            throw ExitCode(1)
        }
        for record in timeline {
            let time = Date(timeIntervalSince1970: Double(record.timestampMilliseconds) / 1000)
            print("\(time.formatted(.iso8601))  \(record.actor.padding(toLength: 22, withPad: " ", startingAt: 0)) \(record.action.padding(toLength: 24, withPad: " ", startingAt: 0)) \(record.details)")
        }
    }
}

struct StudyTimelineOutput: Encodable {
    let study: String
    let timeline: [AuditRecord]
}

/// JSON for `--json` flags: sorted keys, no escaped slashes.
enum JSONOutput {
    static func string<Value: Encodable>(_ value: Value) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
