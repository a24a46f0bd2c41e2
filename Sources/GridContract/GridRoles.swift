import RadGridCore

/// The processes of the grid, each with its own Redis user (`radgrid-<role>`) that may touch
/// only the key families and commands its work needs (`RedisAccessPolicy`).
public enum GridRole: String, Sendable, CaseIterable, Codable {
    /// STOW-RS and edge intake: writes studies and blobs, never reads a blob back.
    case gateway
    /// The DICOM network gateway (`radgrid dimse`): C-STORE intake like the gateway, and the
    /// results it sends back to a site's PACS, which carry the patient module of the study's
    /// own instances, so it reads the blobs of the studies it answers for.
    case dimse
    case coordinator
    case worker
    case router
    /// The expert portal: sessions, worklists, images, reports.
    case portal
    /// `radgridctl` for operators: every non-audit key, appends to the `admin` chain.
    case admin
    /// Read-only dashboards and `radgridctl status`: no blob, report, account, session or token.
    case monitor
    /// Signs checkpoints of the audit chains and archives them: the only role that may delete audit entries.
    case auditor
    /// The supervision-platform feed (`radgrid feed`): reads the audit chains, keeps its cursor.
    case feed

    /// The Redis ACL user name.
    public var user: String { "radgrid-" + rawValue }
}

/// One family of keys and how a role may use it.
public struct KeyAccess: Sendable, Hashable {
    public enum Mode: String, Sendable { case read = "%R~", write = "%W~", readWrite = "~" }
    public var patterns: [String]
    public var mode: Mode
}

/// What each role may do in Redis, as ACL rules (`ACL SETUSER <user> reset on ><password> …`).
///
/// Three selectors per role, because Redis checks a script's declared keys as one command and
/// every call inside it again:
/// - the root selector: the role's own data keys (never an audit key) with the commands of
///   its work (`@read`, `@write`, `@stream`, … minus `@dangerous`);
/// - a script selector: `EVALSHA` over every key the role's scripts declare (its data keys and
///   its audit chains), so a transition and its audit entry stay one atomic script; the calls
///   inside are still checked against the other two selectors;
/// - an audit selector: audit keys (`{<chain>}:audit:*`, `audit:*`) with only the commands an
///   append needs (read, `XADD`, `SET` head, `ZADD`/`SADD` indexes). No `DEL`, `UNLINK`,
///   `XDEL`, `XTRIM`, `EXPIRE` or `RENAME` on an audit key, except for the auditor.
///
/// What ACLs cannot close: `XADD … MAXLEN 0` trims a stream the role may append to. Signed
/// checkpoints outside Redis (`AuditCheckpoints`) catch a chain shortened that way.
public struct RedisAccessPolicy: Sendable {
    public let prefix: KeyPrefix

    public init(prefix: KeyPrefix = .default) { self.prefix = prefix }

    // MARK: Key families (patterns without the prefix)

    static let studyData = ["{s:*}:study", "{s:*}:instances", "{s:*}:outcomes", "{s:*}:thumbs"]
    static let report = ["{s:*}:report"]
    static let blobs = ["{s:*}:blob:*"]
    static let studyIndexes = ["studies:*"]
    static let coordinator = ["coord:*", "turnaround"]
    static let siteConfiguration = ["sites:*"]
    /// Each site's open studies (its quota), kept by whoever moves a study's state.
    static let siteOpenStudies = ["sites:open:*"]
    static let siteTokens = ["gateway:tokens"]
    static let dicomOutbox = ["dimse:*"]
    static let accounts = ["accounts:*", "sessions:*", "login:*"]
    static let workers = ["workers", "workers:*"]
    /// The task queues (`TaskQueue.QueueKeys`), listed so that a queue's audit chain is not among them.
    static let queues = ["{q:*}:lane:*", "{q:*}:state", "{q:*}:delayed:*", "{q:*}:dead", "{q:*}:completed",
                         "{q:*}:groups", "{q:*}:groups:*", "{q:*}:result:*", "{q:*}:screened",
                         "{q:*}:screening:*"]
    /// The router's keys (`Routing.RoutingKeys`): roster, pools, cases, its event stream.
    static let router = ["route:*"]
    /// The streams the DICOM gateway follows (consumer groups) to send results back to PACS:
    /// the router's events and the screened studies.
    static let resultStreams = ["route:{rt}:audit", "{q:*}:screened"]
    /// The sweeper's due index, which a finished study task also moves.
    static let dueStudies = ["studies:due"]
    /// Quality control (`QualityControl.QCStore`).
    static let qualityControl = ["{qc}:case:*", "{qc}:open", "{qc}:arbitration", "{qc}:reads", "{qc}:stats", "{qc}:flagged"]
    /// Critical results (`CriticalResults.CriticalResultKeys`).
    static let criticalResults = ["crit:*"]
    /// The supervision feed's cursors.
    static let feedCursors = ["feed:*"]
    /// Every audit chain's stream, head and timeline index, and the chain registries.
    static let audit = ["{*}:audit:*", "audit:*"]

    /// The role's data keys (root selector); never an audit key.
    public func dataAccess(_ role: GridRole) -> [KeyAccess] {
        typealias F = RedisAccessPolicy
        func rw(_ families: [String]...) -> KeyAccess { KeyAccess(patterns: families.flatMap { $0 }, mode: .readWrite) }
        func r(_ families: [String]...) -> KeyAccess { KeyAccess(patterns: families.flatMap { $0 }, mode: .read) }
        func w(_ families: [String]...) -> KeyAccess { KeyAccess(patterns: families.flatMap { $0 }, mode: .write) }
        switch role {
        case .gateway:
            // Intake writes blobs but never reads one: a stolen gateway credential cannot
            // fetch images. No roster, no accounts, no queue.
            return [rw(F.studyData, F.studyIndexes, F.siteConfiguration, F.criticalResults),
                    r(F.report, F.siteTokens, F.coordinator), w(F.blobs)]
        case .dimse:
            return [rw(F.studyData, F.studyIndexes, F.siteConfiguration, F.dicomOutbox, F.criticalResults, F.resultStreams, F.blobs),
                    r(F.report, F.siteTokens, F.coordinator)]
        case .coordinator:
            return [rw(F.studyData, F.report, F.studyIndexes, F.siteOpenStudies, F.coordinator, F.queues, F.router, F.criticalResults, F.qualityControl, F.dicomOutbox),
                    r(F.siteConfiguration, F.workers), w(F.blobs)]
        case .worker:
            // A finished study task moves the study's state and its indexes.
            return [rw(F.studyData, F.queues, F.workers, F.studyIndexes, F.siteOpenStudies), r(F.blobs, F.siteConfiguration)]
        case .router:
            return [rw(F.router), r(F.studyData, F.studyIndexes, F.coordinator, F.siteConfiguration)]
        case .portal:
            // Blobs: read for the viewer, deleted when a QC hold is released.
            return [rw(F.report, F.accounts, F.router, F.qualityControl, F.criticalResults, F.coordinator, F.studyIndexes, F.siteOpenStudies,
                       F.studyData, F.dicomOutbox, F.blobs),
                    r(F.siteConfiguration, F.siteTokens, F.queues, F.workers)]
        case .admin:
            return [rw(F.studyData, F.report, F.blobs, F.studyIndexes, F.coordinator, F.siteConfiguration, F.siteTokens, F.dicomOutbox,
                       F.accounts, F.workers, F.queues, F.router, F.qualityControl, F.criticalResults)]
        case .monitor:
            return [r(F.studyData, F.studyIndexes, F.coordinator, F.siteConfiguration, F.dicomOutbox, F.workers, F.queues, F.router,
                      F.qualityControl, F.criticalResults)]
        case .auditor:
            return [r(F.studyData, F.studyIndexes)]
        case .feed:
            return [rw(F.feedCursors), r(F.studyData, F.studyIndexes)]
        }
    }

    /// Whether the role may delete and trim audit entries (checkpoints, archives).
    public func ownsAudit(_ role: GridRole) -> Bool { role == .auditor }
    /// Whether the role records its actions in audit chains (the monitor and the feed only read them).
    public func appendsAudit(_ role: GridRole) -> Bool { role != .monitor && role != .feed }

    /// The ACL rules after `ACL SETUSER <user>`: `reset on >password` then the three selectors.
    public func rules(for role: GridRole, password: String) -> [String] {
        ["reset", "on", ">" + password] + permissions(for: role)
    }

    /// The rules without the user's state and password (the template shows these).
    public func permissions(for role: GridRole) -> [String] {
        let p = prefix.value
        var rules = ["resetchannels"]
        for access in dataAccess(role) {
            rules += access.patterns.map { access.mode.rawValue + p + $0 }
        }
        switch role {
        case .monitor:
            rules += ["-@all", "+@read", "+@connection", "-@dangerous", "+info", "+ping", "+time"]
        default:
            // TIME: scripts read the server's clock for audit entries and leases.
            rules += ["-@all", "+@read", "+@write", "+@stream", "+@scripting", "+@connection", "+@transaction", "+@keyspace", "-@dangerous", "+info", "+ping", "+time"]
        }
        // A Redis Cluster client reads the slot map (ASKING and WAIT are in @connection).
        rules.append("+cluster|slots")
        // SCAN names every key of the server: only for the roles that list accounts or look around.
        if ![.portal, .admin, .monitor, .auditor].contains(role) { rules.append("-scan") }
        let audit = RedisAccessPolicy.audit.map { p + $0 }
        if !appendsAudit(role) {
            rules.append("(" + (audit.map { "%R~" + $0 } + ["+@read", "-@dangerous", "-scan"]).joined(separator: " ") + ")")
            return rules
        }
        // Scripts: EVALSHA over the role's data keys and audit chains as one command.
        let scriptKeys = dataAccess(role).flatMap(\.patterns).map { "~" + p + $0 } + audit.map { "~" + $0 }
        rules.append("(" + (scriptKeys + ["+evalsha", "+evalsha_ro"]).joined(separator: " ") + ")")
        let auditCommands = ownsAudit(role)
            ? ["+@read", "+@write", "+@stream", "+@keyspace", "-@dangerous", "-scan"]
            : ["+@read", "-@dangerous", "-scan", "+xadd", "+set", "+zadd", "+sadd"]
        rules.append("(" + (audit.map { "~" + $0 } + auditCommands).joined(separator: " ") + ")")
        return rules
    }

    /// An ACL file (`aclfile` form) with one placeholder password per role (`@GATEWAY@`, …),
    /// for operators who run their own Redis (Ops/redis/radgrid-users.acl.template).
    public func aclFileTemplate() -> String {
        var lines = ["user default off"]
        for role in GridRole.allCases {
            lines.append((["user", role.user, "on", "#@" + role.rawValue.uppercased() + "@"] + permissions(for: role)).joined(separator: " "))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
