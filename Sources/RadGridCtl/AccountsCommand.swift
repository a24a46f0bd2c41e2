import Accounts
import ArgumentParser
import Foundation
import RadGridCLI
import RadGridCore
import RedisClient

/// Reads a password from standard input (the first line), never from the command line,
/// where other users could see it in `ps`.
enum PasswordInput {
    static func read() throws -> String {
        guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else {
            throw ValidationError("no password on standard input")
        }
        return line
    }

    static func who() -> String { "admin:" + AdminAudit.operatorName }
}

/// `radgridctl experts passwd ID --password-stdin` and `radgridctl experts logout ID`.
struct ExpertPasswd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passwd", abstract: "Set an expert's portal password (from stdin); ends their open sessions.")
    @OptionGroup var redis: RedisOptions
    @Argument(help: "Roster id of the expert (also their user name).") var id: String
    @Flag(help: "Read the password from standard input (required: passwords never go on the command line).") var passwordStdin = false

    func run() async throws {
        guard passwordStdin else { throw ValidationError("pass --password-stdin and write the password to standard input") }
        let password = try PasswordInput.read()
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        try await AccountStore(client: client, prefix: redis.keyPrefix).setPassword(user: id, role: .expert, expert: id, password: password, by: PasswordInput.who())
        print("password set for expert \(id)")
    }
}

struct ExpertLogout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "End every portal session of a user at once.")
    @OptionGroup var redis: RedisOptions
    @Argument(help: "User name (an expert's roster id).") var id: String

    func run() async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        let ended = try await AccountStore(client: client, prefix: redis.keyPrefix).revokeAll(user: id, by: PasswordInput.who())
        print("ended \(ended) session(s) of \(id)")
    }
}

/// `radgridctl accounts set|list|logout`: portal accounts of every role.
struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts", abstract: "Manage portal accounts (experts, qc, site and admin users).",
        subcommands: [SetAccount.self, List.self, ExpertLogout.self]
    )

    struct SetAccount: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Create or update an account; the password comes from stdin.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "User name (1-64 letters, digits, - _ .).") var user: String
        @Option(help: "expert, qc, site or admin.") var role: String
        @Option(help: "Roster id (expert and qc accounts; default: the user name).") var expert: String?
        @Option(help: "Site id (site accounts).") var site: String?
        @Option(help: "Display name.") var name: String = ""
        @Flag(help: "Read the password from standard input (required).") var passwordStdin = false

        func run() async throws {
            guard let parsed = Role(rawValue: role) else { throw ValidationError("role must be expert, qc, site or admin") }
            guard passwordStdin else { throw ValidationError("pass --password-stdin and write the password to standard input") }
            let password = try PasswordInput.read()
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let rosterID = (parsed == .expert || parsed == .qc) ? (expert ?? user) : nil
            try await AccountStore(client: client, prefix: redis.keyPrefix).setPassword(user: user, role: parsed, expert: rosterID, site: site, name: name,
                                                                                         password: password, by: PasswordInput.who())
            print("account \(user) (\(parsed.rawValue)) set")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accounts and their roles (never a password hash).")
        @OptionGroup var redis: RedisOptions
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            for principal in try await AccountStore(client: client, prefix: redis.keyPrefix).accounts() {
                print([principal.user, principal.role.rawValue, principal.expert ?? principal.site ?? "-", principal.name].joined(separator: "\t"))
            }
        }
    }
}
