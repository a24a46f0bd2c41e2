import ArgumentParser
import CriticalResults
import Gateway
import RadGridCLI
import RadGridCore
import RedisClient
import GridContract
import StudyStore

/// `radgridctl sites add|list|revoke`: per-site bearer tokens for the gateway.
struct SitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites", abstract: "Manage the sending sites' gateway tokens.",
        subcommands: [Add.self, List.self, Revoke.self, Webhook.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a new token for a site (printed once, stored only as a hash).")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Site code, e.g. H001.") var site: String
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            guard !site.isEmpty, site.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), site.count <= 64 else {
                throw ValidationError("site code must be 1-64 letters, digits, '-' or '_'")
            }
            print(try await SiteTokens(client: client, prefix: redis.keyPrefix).issue(site: site))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sites that hold at least one token.")
        @OptionGroup var redis: RedisOptions
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            for site in try await SiteTokens(client: client, prefix: redis.keyPrefix).sites() { print(site) }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke every token of a site.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Site code.") var site: String
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let count = try await SiteTokens(client: client, prefix: redis.keyPrefix).revoke(site: site)
            print("revoked \(count) token(s) of \(site)")
        }
    }

    /// `radgridctl sites webhook SITE --url URL [--escalation-url URL] --secret-stdin`: where the
    /// site's critical results are delivered (CriticalCommand.swift has the rest).
    struct Webhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a site's critical-result webhook and second contact; the signing secret is read from stdin.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Site code.") var site: String
        @Option(help: "http(s) URL the site's critical results are POSTed to.") var url: String?
        @Option(help: "http(s) URL of the site's second contact (first escalation).") var escalationURL: String?
        @Flag(help: "Read the signing secret (16-512 bytes) from the first line of stdin.") var secretStdin = false
        @Flag(help: "Remove the site's webhook.") var remove = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let store = CriticalResultStore(client: client, prefix: redis.keyPrefix)
            let id = try SiteID(site)
            if remove {
                print(try await store.removeSiteWebhook(id) ? "webhook of \(site) removed" : "\(site) had no webhook")
                return
            }
            guard let url else {
                print(try await store.siteWebhook(id)?.description ?? "\(site) has no webhook")
                return
            }
            guard secretStdin else { throw ValidationError("--secret-stdin is required: the secret is never taken from the command line") }
            do {
                try await store.setSiteWebhook(try SiteWebhook(url: url, escalationURL: escalationURL, secret: try readSecret()), site: id)
            } catch let error as CriticalResultError {
                throw CommandFailure(error)
            }
            print("webhook of \(site) set: \(url)" + (escalationURL.map { ", second contact \($0)" } ?? ""))
        }
    }
}
