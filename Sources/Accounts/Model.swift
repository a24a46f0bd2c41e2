import Foundation
import RadGridCore

/// What a signed-in user may do. Experts read and report the cases routed to them; `qc`
/// readers review reports; `site` users see their own site's studies; `admin` sees all.
public enum Role: String, Sendable, Codable, CaseIterable {
    case expert, qc, site, admin
}

/// Who is signed in: resolved from a bearer token on every request, never from a parameter.
public struct Principal: Sendable, Hashable, Codable {
    public var user: String
    public var role: Role
    /// The roster id an `expert` or `qc` account acts as.
    public var expert: String?
    /// The site a `site` account belongs to.
    public var site: String?
    public var name: String

    public init(user: String, role: Role, expert: String? = nil, site: String? = nil, name: String = "") {
        self.user = user
        self.role = role
        self.expert = expert
        self.site = site
        self.name = name
    }

    /// `expert:E0001`, `site:H001`, `admin:ops1` — the form audit entries name.
    public var auditActor: String {
        switch role {
        case .expert: "expert:" + (expert ?? user)
        case .qc: "qc:" + (expert ?? user)
        case .site: "site:" + (site ?? user)
        case .admin: "admin:" + user
        }
    }
}

/// An open session: who, and until when (the idle timeout slides with use, up to a hard end).
public struct Session: Sendable, Hashable {
    public var principal: Principal
    public var expiresAt: Int64
}

/// Errors of the accounts module. Messages name the problem, never a password or token.
public struct AccountError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case invalid = "accounts.invalid"
        case unknownUser = "accounts.unknownUser"
        case badCredentials = "accounts.badCredentials"
        case throttled = "accounts.throttled"
        case credentialsLapsed = "accounts.credentialsLapsed"
        case weakPassword = "accounts.weakPassword"
    }

    public let codeValue: Code
    public let message: String
    /// Seconds until another attempt is allowed (`throttled`).
    public var retryAfterSeconds: Int?
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, _ message: String, retryAfterSeconds: Int? = nil) {
        self.codeValue = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// Timings and limits of sign-in.
public struct AccountSettings: Sendable, Hashable {
    /// A session ends after this long without use…
    public var idleTimeout: Duration = .seconds(30 * 60)
    /// …and after this long in any case (one working shift).
    public var maximumLifetime: Duration = .seconds(12 * 3600)
    /// Failed sign-ins allowed per user, and per client address, within `failureWindow`.
    public var maxFailuresPerUser = 5
    public var maxFailuresPerAddress = 20
    public var failureWindow: Duration = .seconds(15 * 60)
    /// log2 of bcrypt's rounds (10 ≈ 60-80 ms per check on the benchmark VM).
    public var bcryptCost: UInt8 = 10
    public init() {}
}

/// Account ids: the roster's id rules (letters, digits, `-`, `_`, `.`; 1-64).
enum AccountID {
    static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }
}
