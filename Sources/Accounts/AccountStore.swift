import Audit
import Crypto
import Foundation
import GridContract
import HummingbirdBcrypt
import Logging
import Metrics
import NIOPosix
import RadGridCore
import RedisClient
import Routing

/// Accounts, passwords, sessions and sign-in throttling, in Redis (keys in `GridKeys`).
///
/// Passwords are kept only as bcrypt hashes, computed on NIO's thread pool (a check takes tens
/// of milliseconds of CPU, which must not stall the cooperative pool). Tokens are 256 random
/// bits handed to the client once; Redis keeps their SHA-256, so a copy of the database holds
/// no usable token. Every sign-in, failure, throttle, logout and revocation is appended to
/// the `access` audit chain, naming the user and the client address, never a secret.
public struct AccountStore: Sendable {
    public let client: RedisClient
    public let keys: GridKeys
    public let settings: AccountSettings
    public let roster: ExpertRouter
    public let audit: AuditTrail
    let logger: Logger
    let clock: @Sendable () -> Int64

    /// The audit chain of sign-ins and account changes.
    public static let auditChain = "access"
    static let sessionScript = RedisScript(AccountsLua.session)
    /// Compared against when the user does not exist, so a missing account costs the same time.
    static let decoyHash = Bcrypt.hash("radgrid-decoy-password", cost: 10)

    public init(client: RedisClient, prefix: KeyPrefix = .default, settings: AccountSettings = AccountSettings(),
                logger: Logger = Logger(label: "radgrid.accounts"), clock: @escaping @Sendable () -> Int64 = { WallClock.nowMilliseconds() }) {
        self.client = client
        self.keys = GridKeys(prefix: prefix)
        self.settings = settings
        self.roster = ExpertRouter(redis: client, prefix: prefix, actor: "accounts", logger: logger)
        self.audit = AuditTrail(client: client, prefix: prefix, chain: Self.auditChain)
        self.logger = logger
        self.clock = clock
    }

    // MARK: Accounts

    /// Creates or replaces an account and its password; open sessions of the user end.
    /// An `expert` or `qc` account must name a roster entry; a `site` account a site.
    public func setPassword(user: String, role: Role, expert: String? = nil, site: String? = nil, name: String = "",
                            password: String, by actor: String) async throws {
        guard AccountID.isValid(user) else { throw AccountError(.invalid, "user id: 1-64 letters, digits, - _ .") }
        try Self.checkStrength(password)
        switch role {
        case .expert, .qc:
            guard let expert, AccountID.isValid(expert) else { throw AccountError(.invalid, "an \(role.rawValue) account needs a roster id") }
            guard try await roster.expertState(expert) != nil else { throw AccountError(.unknownUser, "expert \(expert) is not on the roster") }
        case .site:
            guard let site, AccountID.isValid(site) else { throw AccountError(.invalid, "a site account needs a site id") }
        case .admin:
            break
        }
        guard name.count <= 120, !name.contains("\n") else { throw AccountError(.invalid, "name: at most 120 characters, one line") }
        let cost = settings.bcryptCost
        let hash = try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
        var fields: [RedisArgument] = ["HSET", RedisArgument(keys.account(user)), "role", RedisArgument(role.rawValue), "password", RedisArgument(hash),
                                       "name", RedisArgument(name), "changed_ms", RedisArgument(clock())]
        fields += ["expert", RedisArgument(expert ?? ""), "site", RedisArgument(site ?? "")]
        _ = try await client.send(fields)
        _ = try await revokeAll(user: user, by: actor, reason: "password-changed")
        try await audit.append(actor: Self.actor(actor), action: "account.password", details: "user=\(user);role=\(role.rawValue)")
    }

    /// Rules every password must meet: 10 to 72 bytes (bcrypt reads 72), not all one character.
    static func checkStrength(_ password: String) throws(AccountError) {
        let bytes = password.utf8.count
        guard bytes >= 10 else { throw AccountError(.weakPassword, "the password must be at least 10 characters") }
        guard bytes <= 72 else { throw AccountError(.weakPassword, "the password must be at most 72 bytes") }
        guard Set(password).count > 2 else { throw AccountError(.weakPassword, "the password repeats one or two characters") }
        guard !password.contains("\0") else { throw AccountError(.weakPassword, "the password contains a NUL character") }
    }

    struct StoredAccount {
        var principal: Principal
        var passwordHash: String
    }

    func account(_ user: String) async throws -> StoredAccount? {
        guard AccountID.isValid(user) else { return nil }
        let map = try await client.send("HGETALL", RedisArgument(keys.account(user))).fieldMap ?? [:]
        guard let roleText = map["role"]?.string, let role = Role(rawValue: roleText), let hash = map["password"]?.string else { return nil }
        func optional(_ key: String) -> String? { map[key]?.string.flatMap { $0.isEmpty ? nil : $0 } }
        return StoredAccount(principal: Principal(user: user, role: role, expert: optional("expert"), site: optional("site"), name: map["name"]?.string ?? ""),
                             passwordHash: hash)
    }

    /// Accounts by user id with their role (no hashes), for `radgridctl accounts list`.
    public func accounts() async throws -> [Principal] {
        let prefix = keys.account("")
        // Accounts are spread over a cluster's slots: every master is scanned.
        let users = try await client.scanKeys(matching: keys.account("*")).map { String($0.dropFirst(prefix.count)) }
        var result: [Principal] = []
        for user in users.sorted() { if let stored = try await account(user) { result.append(stored.principal) } }
        return result
    }

    // MARK: Sign-in

    /// Checks a password, under the throttle, and opens a session. Throws `throttled`,
    /// `badCredentials` (unknown user and wrong password look the same) or
    /// `credentialsLapsed` (an expert whose licences all expired, or who left the roster).
    public func signIn(user: String, password: String, address: String) async throws -> (token: String, session: Session) {
        let now = clock()
        let userKey = keys.loginFailures(user: AccountID.isValid(user) ? user : "_invalid")
        let addressKey = keys.loginFailures(address: Self.cleanAddress(address))
        let counts = try await client.pipeline([RedisCommand("GET", RedisArgument(userKey)), RedisCommand("GET", RedisArgument(addressKey)),
                                                RedisCommand("PTTL", RedisArgument(userKey)), RedisCommand("PTTL", RedisArgument(addressKey))])
        let userFailures = Int(counts[0].string ?? "") ?? 0, addressFailures = Int(counts[1].string ?? "") ?? 0
        if userFailures >= settings.maxFailuresPerUser || addressFailures >= settings.maxFailuresPerAddress {
            let wait = max(counts[2].int ?? 0, counts[3].int ?? 0)
            let seconds = max(1, Int((wait + 999) / 1000))
            try await audit.append(actor: AuditActor(.system, "portal"), action: "auth.throttled",
                                   details: "user=\(Self.auditUser(user));address=\(Self.cleanAddress(address))")
            throw AccountError(.throttled, "too many failed sign-ins; try again in \(seconds) s", retryAfterSeconds: seconds)
        }
        let stored = try await account(user)
        let hash = stored?.passwordHash
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash ?? Self.decoyHash) && hash != nil }
        guard let stored, matches else {
            let window = RedisArgument(Int64(settings.failureWindow.components.seconds * 1000))
            _ = try await client.pipeline([RedisCommand("INCR", RedisArgument(userKey)), RedisCommand("PEXPIRE", RedisArgument(userKey), window),
                                           RedisCommand("INCR", RedisArgument(addressKey)), RedisCommand("PEXPIRE", RedisArgument(addressKey), window)])
            try await audit.append(actor: AuditActor(.system, "portal"), action: "auth.failed",
                                   details: "user=\(Self.auditUser(user));address=\(Self.cleanAddress(address));reason=\(stored == nil ? "unknown-user" : "password")")
            throw AccountError(.badCredentials, "user or password is wrong")
        }
        var principal = stored.principal
        if principal.role == .expert || principal.role == .qc {
            let state = try await roster.expertState(principal.expert ?? user)
            let valid = state?.expert.credentials.contains { $0.isValid(at: now) } ?? false
            guard let state, valid else {
                try await audit.append(actor: AuditActor(.system, "portal"), action: "auth.refused",
                                       details: "user=\(user);address=\(Self.cleanAddress(address));reason=credentials-lapsed")
                throw AccountError(.credentialsLapsed, "no valid credential on the roster; ask an administrator")
            }
            if principal.name.isEmpty { principal.name = state.expert.name }
        }
        // The session starts now, after the password check (which may have waited for a thread).
        let (token, session) = try await open(principal, now: clock())
        _ = try await client.send("DEL", RedisArgument(userKey))
        try await audit.append(actor: AuditActor(.system, "portal"), action: "auth.login",
                               details: "user=\(user);role=\(principal.role.rawValue);address=\(Self.cleanAddress(address))")
        return (token, session)
    }

    func open(_ principal: Principal, now: Int64) async throws -> (String, Session) {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let digest = Self.tokenHash(token)
        let idle = settings.idleTimeout.components.seconds * 1000, lifetime = settings.maximumLifetime.components.seconds * 1000
        let expires = min(now + idle, now + lifetime)
        let key = RedisArgument(keys.session(tokenHash: digest)), userSet = RedisArgument(keys.userSessions(principal.user))
        _ = try await client.pipeline([
            RedisCommand(["HSET", key, "user", RedisArgument(principal.user), "role", RedisArgument(principal.role.rawValue),
                          "expert", RedisArgument(principal.expert ?? ""), "site", RedisArgument(principal.site ?? ""), "name", RedisArgument(principal.name),
                          "created_ms", RedisArgument(now), "absolute_ms", RedisArgument(now + lifetime)]),
            RedisCommand("PEXPIRE", key, RedisArgument(expires - now)),
            RedisCommand("SADD", userSet, RedisArgument(digest)),
            RedisCommand("PEXPIRE", userSet, RedisArgument(lifetime)),
        ])
        return (token, Session(principal: principal, expiresAt: expires))
    }

    /// The session a bearer token opens, sliding its idle timeout; nil when unknown, expired or revoked.
    public func session(token: String) async throws -> Session? {
        guard !token.isEmpty, token.utf8.count <= 128 else { return nil }
        let reply = try await client.evalScript(Self.sessionScript, keys: [RedisArgument(keys.session(tokenHash: Self.tokenHash(token)))],
                                                arguments: [RedisArgument(clock()), RedisArgument(settings.idleTimeout.components.seconds * 1000)])
        let parts = (reply.array ?? []).map { $0.string ?? "" }
        guard parts.count >= 2 else { return nil }
        var map: [String: String] = [:]
        for i in stride(from: 0, to: parts.count - 1, by: 2) { map[parts[i]] = parts[i + 1] }
        guard let user = map["user"], let role = map["role"].flatMap(Role.init(rawValue:)), let expires = map["expires_ms"].flatMap({ Int64($0) }) else { return nil }
        func optional(_ key: String) -> String? { map[key].flatMap { $0.isEmpty ? nil : $0 } }
        return Session(principal: Principal(user: user, role: role, expert: optional("expert"), site: optional("site"), name: map["name"] ?? ""), expiresAt: expires)
    }

    /// Ends one session (sign-out).
    public func signOut(token: String, principal: Principal) async throws {
        let digest = Self.tokenHash(token)
        _ = try await client.pipeline([RedisCommand("DEL", RedisArgument(keys.session(tokenHash: digest))),
                                       RedisCommand("SREM", RedisArgument(keys.userSessions(principal.user)), RedisArgument(digest))])
        try await audit.append(actor: AuditActor(.system, "portal"), action: "auth.logout", details: "user=\(principal.user)")
    }

    /// Ends every session of a user (`radgridctl experts logout`, a password change). Returns how many were open.
    @discardableResult
    public func revokeAll(user: String, by actor: String, reason: String = "revoked") async throws -> Int {
        guard AccountID.isValid(user) else { throw AccountError(.invalid, "user id: 1-64 letters, digits, - _ .") }
        let setKey = RedisArgument(keys.userSessions(user))
        let digests = (try await client.send("SMEMBERS", setKey).array ?? []).compactMap(\.string)
        var commands = digests.map { RedisCommand("DEL", RedisArgument(keys.session(tokenHash: $0))) }
        commands.append(RedisCommand("DEL", setKey))
        let replies = try await client.pipeline(commands)
        let ended = replies.dropLast().reduce(0) { $0 + Int($1.int ?? 0) }
        try await audit.append(actor: Self.actor(actor), action: "auth.revoked", details: "user=\(user);sessions=\(ended);reason=\(reason)")
        return ended
    }

    // MARK: Helpers

    static func tokenHash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The address as an audit-safe key part (IPv4/IPv6 characters only).
    static func cleanAddress(_ address: String) -> String {
        let kept = address.prefix(64).filter { $0.isHexDigit || $0 == "." || $0 == ":" }
        return kept.isEmpty ? "unknown" : String(kept)
    }

    /// A user name as typed may be anything (even a password typed into the wrong field):
    /// only well-formed ids reach the audit trail.
    static func auditUser(_ user: String) -> String { AccountID.isValid(user) ? user : "(malformed)" }

    static func actor(_ text: String) -> AuditActor { AuditActor(text) ?? AuditActor(.admin, text) }
}
