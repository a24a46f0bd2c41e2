import ArgumentParser
import CriticalResults
import DIMSEGateway
import Foundation
import Gateway
import RadGridCLI
import RadGridCore
import RedisClient
import GridContract
import StudyStore

/// `radgridctl sites add|list|revoke`: per-site bearer tokens for the gateway.
struct SitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites", abstract: "Manage the sending sites: gateway tokens, DICOM AE titles and PACS, webhooks.",
        subcommands: [Add.self, List.self, Revoke.self, Webhook.self, Dicom.self, DicomRemove.self, Pacs.self, DicomList.self, Policy.self]
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
            let token = try await SiteTokens(client: client, prefix: redis.keyPrefix).issue(site: site)
            try await AdminAudit.record("admin.site.tokenIssued", details: "site=\(site)", client: client, prefix: redis.keyPrefix)
            print(token)
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
            try await AdminAudit.record("admin.site.tokensRevoked", details: "site=\(site);tokens=\(count)", client: client, prefix: redis.keyPrefix)
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
                let removed = try await store.removeSiteWebhook(id)
                if removed { try await AdminAudit.record("admin.site.webhookRemoved", details: "site=\(site)", client: client, prefix: redis.keyPrefix) }
                print(removed ? "webhook of \(site) removed" : "\(site) had no webhook")
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
            try await AdminAudit.record("admin.site.webhookSet", details: "site=\(site)", client: client, prefix: redis.keyPrefix)
            print("webhook of \(site) set: \(url)" + (escalationURL.map { ", second contact \($0)" } ?? ""))
        }
    }

    /// `radgridctl sites dicom SITE --ae AE --from ADDR [--from ADDR] [--require-identity] [--max-associations N]`:
    /// a calling AE title of the site's PACS or modality, and where it may call from.
    struct Dicom: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a calling AE title of a site (DIMSE C-STORE) and the addresses it calls from.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Site code.") var site: String
        @Option(help: "The calling AE title the site's PACS uses.") var ae: String
        @Option(name: .customLong("from"), help: "Source address or IPv4 CIDR block it calls from (repeat; * for any).") var addresses: [String] = []
        @Flag(help: "Associations must carry a user identity: username = site code, passcode = one of the site's gateway tokens.") var requireIdentity = false
        @Option(help: "Concurrent associations of this site (0: the server's default).") var maxAssociations = 0
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            _ = try SiteID(site)
            try await SiteNetwork(client: client, prefix: redis.keyPrefix)
                .register(aeTitle: ae, SiteNetwork.Caller(site: site, addresses: addresses, requireIdentity: requireIdentity, maxAssociations: maxAssociations))
            try await AdminAudit.record("admin.dicom.callerRegistered", details: "site=\(site);ae=\(ae);from=\(addresses.joined(separator: ","));identity=\(requireIdentity)",
                                        client: client, prefix: redis.keyPrefix)
            print("\(ae) is site \(site), calling from \(addresses.joined(separator: ", "))")
        }
    }

    struct DicomRemove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dicom-remove", abstract: "Remove a calling AE title (its associations are refused from now on).")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "The calling AE title.") var ae: String
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let removed = try await SiteNetwork(client: client, prefix: redis.keyPrefix).unregister(aeTitle: ae)
            if removed { try await AdminAudit.record("admin.dicom.callerRemoved", details: "ae=\(ae)", client: client, prefix: redis.keyPrefix) }
            print(removed ? "removed \(ae)" : "\(ae) was not registered")
            if !removed { throw ExitCode(1) }
        }
    }

    /// `radgridctl sites policy SITE|'*' [--priorities routine,bulk] [--uploads-per-minute N] [--open-studies N]
    /// [--require-consent true|false] | --remove`.
    struct Policy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set which priorities a site may request, its uploads per minute, its open-studies quota and whether it must send consent ('*': every site without its own); no options: show.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Site code, or * for the default.") var site: String
        @Option(help: "Priorities the site may request, comma separated (stat, urgent, routine, bulk).") var priorities: String?
        @Option(help: "STOW-RS uploads the site may start per minute (0: unlimited).") var uploadsPerMinute: Int?
        @Option(help: "Studies the site may have open at once (0: unlimited); beyond, 429 with Retry-After.") var openStudies: Int?
        @Option(help: "true: every upload must carry a consent reference (header X-Consent-Reference), else 403.") var requireConsent: Bool?
        @Option(help: "Stat studies the site may have open at once, its share of the stat lane (0: unlimited); beyond, 429.") var statOpenStudies: Int?
        @Flag(help: "Remove the site's policy (the * policy, or none, applies).") var remove = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            if site != "*" { _ = try SiteID(site) }
            let policies = SitePolicies(client: client, prefix: redis.keyPrefix)
            if remove {
                try await policies.set(nil, site: site)
                try await AdminAudit.record("admin.site.policyRemoved", details: "site=\(site)", client: client, prefix: redis.keyPrefix)
                print("policy of \(site) removed")
                return
            }
            let current = try await policies.all()
            guard priorities != nil || uploadsPerMinute != nil || openStudies != nil || requireConsent != nil || statOpenStudies != nil else {
                for (name, policy) in current.sorted(by: { $0.key < $1.key }) where site == name {
                    print("\(name): \(Self.describe(policy))")
                }
                if current[site] == nil { print("\(site) has no policy of its own") }
                return
            }
            var policy = current[site] ?? .unrestricted
            if let priorities {
                var parsed: [Priority] = []
                for name in priorities.split(separator: ",") {
                    guard let priority = Priority(name: name.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--priorities takes stat, urgent, routine, bulk") }
                    parsed.append(priority)
                }
                guard !parsed.isEmpty else { throw ValidationError("--priorities must name at least one priority") }
                policy.priorities = Priority.allCases.filter(parsed.contains)
            }
            if let uploadsPerMinute {
                guard uploadsPerMinute >= 0 else { throw ValidationError("--uploads-per-minute must be 0 or more") }
                policy.uploadsPerMinute = uploadsPerMinute
            }
            if let openStudies {
                guard openStudies >= 0 else { throw ValidationError("--open-studies must be 0 or more") }
                policy.openStudies = openStudies
            }
            if let requireConsent { policy.requireConsent = requireConsent }
            if let statOpenStudies {
                guard statOpenStudies >= 0 else { throw ValidationError("--stat-open-studies must be 0 or more") }
                policy.statOpenStudies = statOpenStudies
            }
            try await policies.set(policy, site: site)
            try await AdminAudit.record("admin.site.policySet", details: "site=\(site);priorities=\(policy.priorities.map(\.rawValue).joined(separator: ","));perMinute=\(policy.uploadsPerMinute);openStudies=\(policy.openStudies);statOpen=\(policy.statOpenStudies);consent=\(policy.requireConsent ? "required" : "optional")",
                                        client: client, prefix: redis.keyPrefix)
            print("policy of \(site): \(Self.describe(policy))")
        }

        static func describe(_ policy: SitePolicy) -> String {
            func limit(_ n: Int) -> String { n == 0 ? "unlimited" : String(n) }
            return "priorities \(policy.priorities.map(\.rawValue).joined(separator: ",")), uploads/minute \(limit(policy.uploadsPerMinute)), open studies \(limit(policy.openStudies)), stat studies open \(limit(policy.statOpenStudies)), consent \(policy.requireConsent ? "required" : "optional")"
        }
    }

    /// `radgridctl sites pacs SITE --ae AE --host H --port P [--send report,screening] | --remove`.
    struct Pacs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the PACS a site's results are sent back to over C-STORE.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Site code.") var site: String
        @Option(help: "The PACS's AE title (called AE).") var ae: String?
        @Option(help: "The PACS's host.") var host: String?
        @Option(help: "The PACS's port.") var port: Int?
        @Option(help: "What to send: report, screening, or both (comma separated).") var send = "report,screening"
        @Flag(help: "Stop sending results to this site.") var remove = false
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let network = SiteNetwork(client: client, prefix: redis.keyPrefix)
            let id = try SiteID(site)
            if remove {
                try await network.setDestination(site: id, nil)
                try await AdminAudit.record("admin.dicom.pacsRemoved", details: "site=\(site)", client: client, prefix: redis.keyPrefix)
                print("results of \(site) are no longer sent")
                return
            }
            guard let ae, let host, let port else { throw ValidationError("give --ae, --host and --port (or --remove)") }
            var kinds: [ResultKind] = []
            for name in send.split(separator: ",") {
                guard let kind = ResultKind(rawValue: name.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--send takes report and/or screening") }
                kinds.append(kind)
            }
            try await network.setDestination(site: id, SiteNetwork.Destination(aeTitle: ae, host: host, port: port, send: kinds))
            try await AdminAudit.record("admin.dicom.pacsSet", details: "site=\(site);ae=\(ae);host=\(host);port=\(port)", client: client, prefix: redis.keyPrefix)
            print("results of \(site) go to \(ae)@\(host):\(port) (\(kinds.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    struct DicomList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dicom-list", abstract: "Registered calling AE titles and PACS destinations.")
        @OptionGroup var redis: RedisOptions
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let network = SiteNetwork(client: client, prefix: redis.keyPrefix)
            let callers = try await network.callers()
            let destinations = try await network.destinations()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                struct Listing: Encodable { var callers: [String: SiteNetwork.Caller]; var pacs: [String: SiteNetwork.Destination] }
                print(String(decoding: try encoder.encode(Listing(callers: callers, pacs: destinations)), as: UTF8.self))
                return
            }
            for (ae, caller) in callers.sorted(by: { $0.key < $1.key }) {
                print("AE \(ae)  site \(caller.site)  from \(caller.addresses.joined(separator: ","))\(caller.requireIdentity ? "  identity required" : "")")
            }
            for (site, pacs) in destinations.sorted(by: { $0.key < $1.key }) {
                print("PACS of \(site)  \(pacs.aeTitle)@\(pacs.host):\(pacs.port)  sends \(pacs.send.map(\.rawValue).joined(separator: ","))")
            }
        }
    }
}
