import ArgumentParser
import CriticalResults
import Foundation
import GridContract
import RadGridCLI
import RadGridCore
import RedisClient

/// `radgridctl critical list|show|retry|admin-webhook`: critical results and their deliveries.
/// Secrets are read from stdin and never printed.
struct CriticalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "critical",
        abstract: "Critical results: who was notified, escalations, acknowledgements, dead letters.",
        subcommands: [List.self, Show.self, Retry.self, AdminWebhook.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unacknowledged critical results, oldest first (--all: also acknowledged ones kept for the retention).")
        @OptionGroup var redis: RedisOptions
        @Flag(help: "Include acknowledged results.") var all = false
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let results = try await CriticalResultStore(client: client, prefix: redis.keyPrefix).list(includeAcknowledged: all)
            if json { return try printJSON(results) }
            if results.isEmpty { print(all ? "no critical results" : "no unacknowledged critical results"); return }
            for result in results {
                let age = (WallClock.nowMilliseconds() - result.raisedMs) / 60_000
                let pad = { (text: String, width: Int) in text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
                print("\(pad(result.state.rawValue, 12)) \(pad(result.priority.rawValue, 8)) \(pad(result.source.rawValue, 6)) site=\(pad(result.site.rawValue, 8)) escalation=\(result.escalationLevel)  \(age) min  \(result.study)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A study's critical results with every delivery.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Study Instance UID.") var study: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let uid = try StudyUID(study)
            let results = try await CriticalResultStore(client: client, prefix: redis.keyPrefix).results(study: uid)
            if json { return try printJSON(results) }
            guard !results.isEmpty else { throw CommandFailure(CriticalResultError(.notFound, "no critical result for this study")) }
            for result in results {
                print("result:      \(result.id)  (\(result.source.rawValue))")
                print("study:       \(result.study)   case: \(result.caseID?.rawValue ?? "-")   site: \(result.site)")
                print("priority:    \(result.priority)   raised: \(WebhookBody.iso8601(milliseconds: result.raisedMs))")
                print("state:       \(result.state.rawValue)   escalation level: \(result.escalationLevel)")
                if let next = result.nextEscalationMs { print("escalates:   \(WebhookBody.iso8601(milliseconds: next))") }
                if let ack = result.acknowledgement {
                    print("acknowledged by \(ack.by) (\(ack.method)) at \(WebhookBody.iso8601(milliseconds: ack.atMs))")
                }
                for delivery in result.deliveries {
                    let at = delivery.atMs.map { " at " + WebhookBody.iso8601(milliseconds: $0) } ?? ""
                    print("  \(delivery.target.rawValue): \(delivery.state.rawValue), \(delivery.attempts) attempt(s)\(at)\(delivery.lastError.map { ", last error \($0)" } ?? "")")
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a study's dead-lettered deliveries again (fresh attempts).")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Study Instance UID.") var study: String

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let moved = try await CriticalResultStore(client: client, prefix: redis.keyPrefix)
                .retryDead(study: try StudyUID(study), now: WallClock.nowMilliseconds(), actor: .init(.admin, AdminAudit.operatorName))
            print(moved == 0 ? "no dead-lettered delivery for this study" : "\(moved) delivery(ies) moved back to delivery")
        }
    }

    struct AdminWebhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "admin-webhook",
                                                        abstract: "Set the grid admins' webhook (second escalation); the signing secret is read from stdin.")
        @OptionGroup var redis: RedisOptions
        @Option(help: "http(s) URL the admins' escalations are POSTed to.") var url: String?
        @Flag(help: "Read the signing secret (16-512 bytes) from the first line of stdin.") var secretStdin = false
        @Flag(help: "Only show the URL configured now.") var show = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let store = CriticalResultStore(client: client, prefix: redis.keyPrefix)
            if show || url == nil {
                print(try await store.adminWebhook()?.description ?? "no admin webhook configured")
                return
            }
            guard secretStdin else { throw ValidationError("--secret-stdin is required: the secret is never taken from the command line") }
            do {
                try await store.setAdminWebhook(try WebhookEndpoint(url: url ?? "", secret: try readSecret()))
            } catch let error as CriticalResultError {
                throw CommandFailure(error)
            }
            try await AdminAudit.record("admin.critical.adminWebhookSet", details: "", client: client, prefix: redis.keyPrefix)
            print("admin webhook set: \(url ?? "")")
        }
    }
}

/// The first line of stdin, without its line end (a secret is never an argument: it would
/// show in `ps` and shell history).
func readSecret() throws -> String {
    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
        throw ValidationError("no secret on stdin")
    }
    return line
}
