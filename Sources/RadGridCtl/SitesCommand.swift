import ArgumentParser
import Gateway
import RadGridCLI
import RadGridCore
import RedisClient
import StudyStore

/// `radgridctl sites add|list|revoke`: per-site bearer tokens for the gateway.
struct SitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites", abstract: "Manage the sending sites' gateway tokens.",
        subcommands: [Add.self, List.self, Revoke.self]
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
}
