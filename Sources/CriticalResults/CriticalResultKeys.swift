import RadGridCore

/// The Redis layout of critical results. Every key carries the hash tag `{cr}`, the same as the
/// module's audit chain (`<prefix>{cr}:audit:…`), so each transition and its audit entry are
/// one atomic script in one cluster slot.
///
/// | key | type | owner / lifetime |
/// | --- | --- | --- |
/// | `crit:{cr}:r:<source>:<study uid>` | hash, one result (see `Lua/_critical.lua`) | kept until acknowledged (it must stay visible); expires `retention` after the acknowledgement |
/// | `crit:{cr}:open` | zset member → raised ms | a member leaves when its result is acknowledged |
/// | `crit:{cr}:deliveries` | zset `member\|level` → due ms | a member leaves when delivered, dead-lettered, acknowledged |
/// | `crit:{cr}:timers` | zset member → next escalation ms | a member leaves after the last level or when acknowledged |
/// | `crit:{cr}:dead` | zset `member\|level` → ms | a member leaves on `radgridctl critical retry` or the acknowledgement |
/// | `crit:{cr}:acked` | zset member → retention end ms | pruned by the notifier once past (its hash has expired) |
/// | `crit:{cr}:config:sites` | hash site → webhook JSON (url, second contact, secret) | configuration (`radgridctl sites webhook`) |
/// | `crit:{cr}:config:admins` | string, the admins' webhook JSON | configuration (`radgridctl critical admin-webhook`) |
/// | `crit:{cr}:config:policy` | hash `retention_ms` | written by the notifiers from their policy (acknowledgements read it) |
/// | `{cr}:audit:*` | the audit chain `cr` | kept for the record (see `AuditTrail`) |
///
/// A member is `<source>:<study uid>`; deliveries add `|<level>` (0 the site, 1 its second
/// contact, 2 the grid's admins).
public struct CriticalResultKeys: Sendable, Hashable {
    /// The audit chain of the module (also its hash tag).
    public static let auditChain = "cr"

    public let prefix: KeyPrefix
    /// `<prefix>crit:{cr}:`
    public let base: String

    public init(prefix: KeyPrefix = .default) {
        self.prefix = prefix
        base = prefix.value + "crit:{\(Self.auditChain)}:"
    }

    public var open: String { base + "open" }
    public var deliveries: String { base + "deliveries" }
    public var timers: String { base + "timers" }
    public var dead: String { base + "dead" }
    public var acknowledged: String { base + "acked" }
    public var siteWebhooks: String { base + "config:sites" }
    public var adminWebhook: String { base + "config:admins" }
    public var policy: String { base + "config:policy" }

    public func result(study: String, source: CriticalSource) -> String { base + "r:" + Self.member(study: study, source: source) }
    public func result(member: String) -> String { base + "r:" + member }

    public static func member(study: String, source: CriticalSource) -> String { source.rawValue + ":" + study }
}
