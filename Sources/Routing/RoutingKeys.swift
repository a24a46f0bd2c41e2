import RadGridCore
import RedisClient

/// The Redis layout of the router. Every key carries the hash tag `{rt}` so all scripts
/// touch a single slot; every key a script touches is passed in KEYS.
///
/// ```
/// <prefix>route:{rt}:ex:cap        HASH  expert -> capacity (work units)
/// <prefix>route:{rt}:ex:load       HASH  expert -> weighted open work
/// <prefix>route:{rt}:ex:recent     HASH  expert -> "decayedCount:ms" (tie breaker)
/// <prefix>route:{rt}:ex:until      HASH  expert -> available until (ms; 0 = not available)
/// <prefix>route:{rt}:ex:cred       HASH  "expert|scope" -> credential expiry (ms; 0 = none)
/// <prefix>route:{rt}:ex:home       HASH  expert -> home site (conflict rule)
/// <prefix>route:{rt}:ex:pools      HASH  expert -> space-separated pool names
/// <prefix>route:{rt}:ex:open       HASH  expert -> open assignments
/// <prefix>route:{rt}:ex:next       ZSET  expert by next availability check (sweeper)
/// <prefix>route:{rt}:ex:profile    HASH  expert -> roster JSON
/// <prefix>route:{rt}:ex:presence   HASH  expert -> "status|heartbeatUntilMs"
/// <prefix>route:{rt}:pool:<spec>@<scope>  ZSET  available experts by load/capacity
/// <prefix>route:{rt}:case:<id>     HASH  one case (requirements, state, holder, exclusions)
/// <prefix>route:{rt}:wait          ZSET  waiting cases by effective priority*1e13 + submit ms
/// <prefix>route:{rt}:timers        ZSET  cases by next due time (accept timeout, SLA, widen, age)
/// <prefix>route:{rt}:escalated     ZSET  cases past their deadline, by deadline
/// <prefix>route:{rt}:wake          LIST  "capacity freed / expert available" signals
/// <prefix>route:{rt}:intake        STREAM cases ready for routing (coordinator -> routers)
/// <prefix>route:{rt}:audit         STREAM every routing step (no PHI)
/// <prefix>route:{rt}:stats         HASH  counters
/// <prefix>route:{rt}:held          ZSET  "expert|case" (score 0) per offered or accepted case: worklists
/// ```
public struct RoutingKeys: Sendable, Hashable {
    public let base: String

    public init(prefix: KeyPrefix = .default) {
        base = prefix.value + "route:{rt}:"
    }

    public var cap: String { base + "ex:cap" }
    public var load: String { base + "ex:load" }
    public var recent: String { base + "ex:recent" }
    public var until: String { base + "ex:until" }
    public var cred: String { base + "ex:cred" }
    public var home: String { base + "ex:home" }
    public var pools: String { base + "ex:pools" }
    public var open: String { base + "ex:open" }
    public var next: String { base + "ex:next" }
    public var profile: String { base + "ex:profile" }
    public var presence: String { base + "ex:presence" }
    public var wait: String { base + "wait" }
    public var timers: String { base + "timers" }
    public var escalated: String { base + "escalated" }
    public var wake: String { base + "wake" }
    public var intake: String { base + "intake" }
    public var audit: String { base + "audit" }
    public var stats: String { base + "stats" }
    public var held: String { base + "held" }
    /// Placeholder in the case slot of scripts that touch no case.
    var none: String { base + "none" }

    public func caseKey(_ id: String) -> String { base + "case:" + id }
    public func pool(_ name: String) -> String { base + "pool:" + name }

    /// `CT/head/neuro@H001`, `CR/chest@region:EU-N`.
    public static func poolName(_ specialty: Specialty, _ scope: String) -> String { "\(specialty)@\(scope)" }

    /// KEYS[1...18] of every script, in the order the table `K` of `Lua/_routing.lua` names them.
    var statics: [RedisArgument] {
        [cap, load, recent, until, cred, home, pools, wait, timers, audit, wake, escalated, open, next, profile, presence, stats, held]
            .map { RedisArgument($0) }
    }
}
