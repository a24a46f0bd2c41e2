import GridContract
import Logging
import RadGridCore
import RedisClient

/// Creates one Redis ACL user per role with a fresh random password and writes each role's
/// URL to `DIR/secrets/redis-<role>.url` (mode 0600, directory 0700): children get their own
/// URL through the environment, never on their command line.
struct RedisUsers: Sendable {
    /// `radgrid up`'s own user on its private server (provisioning, restarts): every command.
    static let supervisorUser = "radgrid-supervisor"

    let secretsDirectory: String
    let policy: RedisAccessPolicy
    let logger: Logger

    func urlFile(_ role: String) -> String { secretsDirectory + "/redis-\(role).url" }

    /// Creates (or resets) every role's user on the server `client` is signed in to, with
    /// `endpoint` (`redis://host:port`) as the address in the URLs. Returns role → URL.
    func provision(client: RedisClient, endpoint: String) async throws -> [GridRole: String] {
        try Files.makeDirectories(secretsDirectory, mode: 0o700)
        var urls: [GridRole: String] = [:]
        var commands: [RedisCommand] = []
        for role in GridRole.allCases {
            let password = Self.randomSecret()
            commands.append(RedisCommand(["ACL", "SETUSER", RedisArgument(role.user)] + policy.rules(for: role, password: password).map { RedisArgument($0) }))
            urls[role] = Self.url(endpoint: endpoint, user: role.user, password: password)
        }
        if client.isCluster {
            // Cluster nodes keep their own users: every node, replicas too (they may be promoted).
            for command in commands { _ = try await client.sendToEveryNode(command) }
        } else {
            for reply in try await client.pipeline(commands) {
                _ = try reply.throwingServerError()
            }
        }
        for role in GridRole.allCases { try Files.write(urlFile(role.rawValue), urls[role]! + "\n", mode: 0o600) }
        return urls
    }

    /// On a private server: a supervisor user with every right, then the password-less default
    /// user switched off; the users are saved to the server's ACL file so a restart keeps them.
    func lockPrivateServer(client: RedisClient, endpoint: String) async throws -> String {
        try Files.makeDirectories(secretsDirectory, mode: 0o700)
        let password = Self.randomSecret()
        _ = try await client.send(["ACL", "SETUSER", RedisArgument(Self.supervisorUser), "reset", "on", RedisArgument(">" + password), "~*", "&*", "+@all"]).throwingServerError()
        let url = Self.url(endpoint: endpoint, user: Self.supervisorUser, password: password)
        try Files.write(urlFile("supervisor"), url + "\n", mode: 0o600)
        _ = try await client.send(["ACL", "SETUSER", "default", "off", "resetpass"]).throwingServerError()
        _ = try await client.send(["ACL", "SAVE"]).throwingServerError()
        return url
    }

    /// The URL kept in `DIR/secrets/redis-<role>.url`, if any.
    func savedURL(_ role: String) -> String? {
        Files.read(urlFile(role)).map { String($0.filter { !$0.isWhitespace }) }?.nilIfEmpty
    }

    /// `redis://host:port/db` of a URL, without its credentials.
    static func endpoint(of url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound] + url[url.index(after: at)...])
    }

    /// A saved URL's credentials on another endpoint (the private server's port changes per start).
    static func rebase(_ url: String, onto endpoint: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@"),
              let target = endpoint.range(of: "://") else { return endpoint }
        return String(endpoint[..<target.upperBound] + url[scheme.upperBound...at] + endpoint[target.upperBound...])
    }

    static func url(endpoint: String, user: String, password: String) -> String {
        guard let scheme = endpoint.range(of: "://") else { return endpoint }
        return endpoint[..<scheme.upperBound] + user + ":" + password + "@" + endpoint[scheme.upperBound...]
    }

    /// 32 random bytes as hex (the password alphabet needs no URL escaping).
    static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return String((0..<64).map { _ in hex[Int(generator.next() & 15)] })
    }

    /// Commands refused by ACL since the server started (`ACL LOG`): user, command and key,
    /// one line each. `radgrid up` writes them to `logs/redis-acl.log` when it stops.
    static func denials(client: RedisClient) async throws -> [String] {
        let reply = try await client.send(["ACL", "LOG", "256"]).throwingServerError()
        var lines: [String] = []
        for entry in reply.array ?? [] {
            let fields = entry.array ?? []
            var values: [String: String] = [:]
            var i = 0
            while i + 1 < fields.count {
                if let key = fields[i].string { values[key] = fields[i + 1].string ?? "" }
                i += 2
            }
            lines.append("\(values["username"] ?? "?") \(values["reason"] ?? "?") \(values["object"] ?? "?") count=\(values["count"] ?? "?") context=\(values["context"] ?? "?")")
        }
        return lines
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
