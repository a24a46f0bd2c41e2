import Accounts
import Audit
import Foundation
import RadGridCore
import RedisClient
import Routing
import Synchronization
import Testing
import TestSupport

/// Accounts against a real Redis: passwords only as bcrypt hashes, sessions as hashed
/// tokens that slide and can be revoked, sign-in throttled per user and per address, experts
/// without a valid credential refused, every step in the `access` audit chain without secrets.
@Suite struct AccountStoreTests {
    struct Fixture {
        let client: RedisClient
        let prefix: KeyPrefix
        let accounts: AccountStore
        let router: ExpertRouter
        var now: Int64 { WallClock.nowMilliseconds() }
    }

    func withAccounts(_ configure: (inout AccountSettings) -> Void = { _ in }, clock: @escaping @Sendable () -> Int64 = { WallClock.nowMilliseconds() },
                      _ body: (Fixture) async throws -> Void) async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        var settings = AccountSettings()
        settings.bcryptCost = 4
        configure(&settings)
        let router = ExpertRouter(redis: client, prefix: prefix, actor: "test")
        let later = WallClock.nowMilliseconds() + 86_400_000
        try await router.upsertExperts([
            Expert(id: "E1", name: "Dr One", specialties: [try Specialty("CT/head")], credentials: [Credential(scope: "H001", expires: later)], capacity: 10, licence: Licence(number: "L-1"), practiceSince: 0),
            Expert(id: "E2", name: "Dr Two", specialties: [try Specialty("CT/head")], credentials: [Credential(scope: "H001", expires: WallClock.nowMilliseconds() - 1000)], capacity: 10, licence: Licence(number: "L-1"), practiceSince: 0),
        ])
        try await body(Fixture(client: client, prefix: prefix, accounts: AccountStore(client: client, prefix: prefix, settings: settings, clock: clock), router: router))
    }

    /// Every key and string value under the prefix, to look for secrets.
    func dump(_ fixture: Fixture) async throws -> String {
        var text = ""
        for key in try await fixture.client.scanKeys(matching: fixture.prefix.value + "*") {
            text += key + "\n"
            let type = try await fixture.client.send("TYPE", RedisArgument(key)).string ?? ""
            switch type {
            case "hash": text += (try await fixture.client.send("HGETALL", RedisArgument(key)).array ?? []).compactMap(\.string).joined(separator: " ")
            case "string": text += try await fixture.client.send("GET", RedisArgument(key)).string ?? ""
            case "set": text += (try await fixture.client.send("SMEMBERS", RedisArgument(key)).array ?? []).compactMap(\.string).joined(separator: " ")
            case "stream": text += "\(try await fixture.client.send("XRANGE", RedisArgument(key), "-", "+"))"
            default: break
            }
            text += "\n"
        }
        return text
    }

    @Test func signInOpensASessionAndNoSecretIsStored() async throws {
        try await withAccounts { f in
            let password = "correct horse battery"
            try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: password, by: "admin:test")
            let (token, session) = try await f.accounts.signIn(user: "E1", password: password, address: "10.0.0.7")
            #expect(session.principal == Principal(user: "E1", role: .expert, expert: "E1", name: "Dr One"))
            #expect(session.expiresAt > f.now)
            let resolved = try #require(try await f.accounts.session(token: token))
            #expect(resolved.principal.expert == "E1")
            let stored = try await dump(f)
            #expect(!stored.contains(password), "the password must never be stored")
            #expect(!stored.contains(token), "the token must never be stored, only its hash")
            let hash = try await f.client.send("HGET", RedisArgument(f.prefix.value + "accounts:E1"), "password").string ?? ""
            #expect(hash.hasPrefix("$2"), "a bcrypt hash")
            let trail = try await AuditTrail(client: f.client, prefix: f.prefix, chain: AccountStore.auditChain).entries()
            #expect(trail.map(\.action).contains("auth.login"))
            #expect(trail.contains { $0.action == "auth.login" && $0.details.contains("address=10.0.0.7") })
        }
    }

    @Test func wrongPasswordsAndUnknownUsersLookTheSameAndAreThrottled() async throws {
        try await withAccounts({ $0.maxFailuresPerUser = 3; $0.maxFailuresPerAddress = 5 }) { f in
            try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: "right password 1", by: "admin:test")
            for attempt in 1...3 {
                await #expect(throws: AccountError.self) { try await f.accounts.signIn(user: "E1", password: "guess \(attempt) xx", address: "10.0.0.8") }
            }
            // The fourth try is refused before the password is even checked, the right one too.
            do {
                _ = try await f.accounts.signIn(user: "E1", password: "right password 1", address: "10.0.0.9")
                Issue.record("a throttled user signed in")
            } catch let error as AccountError {
                #expect(error.codeValue == .throttled)
                #expect((error.retryAfterSeconds ?? 0) > 0)
            }
            // Per address: an unknown user counts against the address too.
            do {
                _ = try await f.accounts.signIn(user: "nobody", password: "whatever 123", address: "10.0.0.8")
                Issue.record("an unknown user signed in")
            } catch let error as AccountError {
                #expect(error.codeValue == .badCredentials)
                #expect(error.message == "user or password is wrong")
            }
            await #expect(throws: AccountError.self) { try await f.accounts.signIn(user: "E2", password: "x1234567890", address: "10.0.0.8") }
            do {
                _ = try await f.accounts.signIn(user: "E2", password: "x1234567890", address: "10.0.0.8")
                Issue.record("a throttled address signed in")
            } catch let error as AccountError { #expect(error.codeValue == .throttled) }
            let trail = try await AuditTrail(client: f.client, prefix: f.prefix, chain: AccountStore.auditChain).entries()
            #expect(trail.filter { $0.action == "auth.failed" }.count == 5)
            #expect(trail.contains { $0.action == "auth.throttled" })
            #expect(!trail.contains { $0.details.contains("guess") || $0.details.contains("right password") }, "no password in the audit trail")
        }
    }

    @Test func expertsWithoutAValidCredentialCannotSignIn() async throws {
        try await withAccounts { f in
            try await f.accounts.setPassword(user: "E2", role: .expert, expert: "E2", password: "lapsed licence 1", by: "admin:test")
            do {
                _ = try await f.accounts.signIn(user: "E2", password: "lapsed licence 1", address: "127.0.0.1")
                Issue.record("an expert with only expired credentials signed in")
            } catch let error as AccountError { #expect(error.codeValue == .credentialsLapsed) }
            // Not on the roster at all: no account can even be made.
            await #expect(throws: AccountError.self) {
                try await f.accounts.setPassword(user: "E9", role: .expert, expert: "E9", password: "not on roster 1", by: "admin:test")
            }
        }
    }

    @Test func revokedSessionsEndAtOnceAndPasswordChangesEndThemToo() async throws {
        try await withAccounts { f in
            try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: "first password 1", by: "admin:test")
            let (first, _) = try await f.accounts.signIn(user: "E1", password: "first password 1", address: "127.0.0.1")
            let (second, _) = try await f.accounts.signIn(user: "E1", password: "first password 1", address: "127.0.0.1")
            #expect(try await f.accounts.revokeAll(user: "E1", by: "admin:ops") == 2)
            #expect(try await f.accounts.session(token: first) == nil)
            #expect(try await f.accounts.session(token: second) == nil)
            let (third, _) = try await f.accounts.signIn(user: "E1", password: "first password 1", address: "127.0.0.1")
            try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: "second password 2", by: "admin:test")
            #expect(try await f.accounts.session(token: third) == nil)
            await #expect(throws: AccountError.self) { try await f.accounts.signIn(user: "E1", password: "first password 1", address: "127.0.0.1") }
            let trail = try await AuditTrail(client: f.client, prefix: f.prefix, chain: AccountStore.auditChain).entries()
            #expect(trail.contains { $0.action == "auth.revoked" && $0.actor == "admin:ops" && $0.details.contains("sessions=2") })
        }
    }

    /// Sliding is checked on the session key's TTL (a use sets it back to the idle timeout),
    /// the hard end with an injected clock, the idle end by Redis itself: none of it depends
    /// on how fast a loaded machine runs the test.
    @Test func sessionsSlideWithUseUpToTheirHardEnd() async throws {
        let offset = Mutex<Int64>(0)
        let clock: @Sendable () -> Int64 = { WallClock.nowMilliseconds() + offset.withLock { $0 } }
        // Margins of seconds: on a loaded 2-core machine a step here has taken over a second.
        try await withAccounts({ $0.idleTimeout = .seconds(8); $0.maximumLifetime = .seconds(3600) }, clock: clock) { f in
            try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: "sliding window 1", by: "admin:test")
            let (token, session) = try await f.accounts.signIn(user: "E1", password: "sliding window 1", address: "127.0.0.1")
            let key = try #require(try await f.client.scanKeys(matching: f.prefix.value + "sessions:????????????????*").first)
            func ttl() async throws -> Int64 { try await f.client.send("PTTL", RedisArgument(key)).int ?? -2 }
            #expect(try await ttl() > 5000 && session.expiresAt > clock())
            try await Task.sleep(for: .milliseconds(2500))
            #expect(try await ttl() < 5600, "the idle time runs down")
            #expect(try await f.accounts.session(token: token) != nil)
            #expect(try await ttl() > 6000, "a use sets it back to the idle timeout")
            // An hour on, used all along: past the hard end the session is refused and deleted.
            offset.withLock { $0 = 3_600_001 }
            #expect(try await f.accounts.session(token: token) == nil)
            #expect(try await f.client.send("EXISTS", RedisArgument(key)).int == 0)
        }
        try await withAccounts({ $0.idleTimeout = .seconds(1) }) { f in
            try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: "sliding window 1", by: "admin:test")
            let (token, _) = try await f.accounts.signIn(user: "E1", password: "sliding window 1", address: "127.0.0.1")
            try await Task.sleep(for: .milliseconds(1600))
            #expect(try await f.accounts.session(token: token) == nil, "unused past the idle timeout")
        }
    }

    @Test func weakPasswordsAreRefusedWithoutEchoingThem() async throws {
        try await withAccounts { f in
            for weak in ["short", "aaaaaaaaaaaa", String(repeating: "x", count: 60) + "yz" + String(repeating: "é", count: 10)] {
                do {
                    try await f.accounts.setPassword(user: "E1", role: .expert, expert: "E1", password: weak, by: "admin:test")
                    Issue.record("a weak password was accepted")
                } catch let error as AccountError {
                    #expect(error.codeValue == .weakPassword)
                    #expect(!error.message.contains(weak))
                }
            }
        }
    }
}
