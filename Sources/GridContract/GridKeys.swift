import RadGridCore

/// Every Redis key the grid's modules share, built in one place, with who deletes it.
///
/// Libraries with a private layout build it from the base given here: the task queue
/// (`<prefix>{q:<name>}:…`, see docs/QUEUE.md), the router (`<prefix>route:{rt}:…`, see
/// docs/ROUTING.md) and audit chains (`<prefix>{<chain>}:audit:…`, see `AuditTrail`).
///
/// | key | type | owner / lifetime |
/// | --- | --- | --- |
/// | `{s:<uid>}:study` | hash | the study record; expires `retention` after the study ends |
/// | `{s:<uid>}:instances` | hash sop → series\|bytes\|sha256\|modality | as the record |
/// | `{s:<uid>}:blob:<sop>` | string (zstd DICOM) | deleted when reported; expires with the record otherwise |
/// | `{s:<uid>}:outcomes` | hash sop → instance outcome | written by the study task; as the record |
/// | `{s:<uid>}:thumbs` | hash series → PNG thumbnail | written by the study task; as the record |
/// | `{s:<uid>}:report` | string (report JSON) | written by the portal; deleted with the record (retention) |
/// | `studies:all` | zset uid → created ms | the sweeper removes studies whose record expired |
/// | `studies:due` | zset uid → next look (ms) | the sweeper: every study not yet ended is in it |
/// | `studies:state:<state>` | set | counts for status; the sweeper removes expired studies |
/// | `studies:committed` | stream | coordinators' group; capped (MAXLEN ~) |
/// | `coord:case:<case>` | string case → study uid | deleted when the study ends; TTL as a backstop |
/// | `sites:region` | hash site → region | configuration (operators) |
/// | `turnaround` | hash `<priority>\|<stage>\|n`, `…\|sum_ms`, `…\|b<bucket>`, `<priority>\|breaches` | counters of reported studies (kept; `radgridctl status`) |
/// | `sites:uploading:<site>` | counter | a site's uploads in progress; TTL 60 s, refreshed while receiving |
/// | `sites:policy` | hash site (or `*`) → JSON | configuration (`radgridctl sites policy`) |
/// | `sites:uploads:<site>:<minute>` | counter | uploads started that minute (rate limit); TTL 120 s |
/// | `sites:open:<site>` | hash study uid → priority | the site's studies not yet ended (quota, stat share); added at intake, removed when a study ends or expires |
/// | `gateway:tokens` | hash sha256 → site | configuration (`radgridctl sites`) |
/// | `workers` / `workers:<name>` | zset / hash | heartbeats; hash TTL 3 beats, zset pruned by `radgridctl status` |
/// | `accounts:<user>` | hash role, bcrypt hash, expert/site | configuration (`radgridctl experts passwd`, `accounts`) |
/// | `sessions:<sha256>` | hash principal of one token | TTL: the idle timeout, refreshed on use, capped |
/// | `sessions:user:<user>` | set of token hashes | TTL as the longest session; emptied by logout |
/// | `login:fail:user:<user>`, `login:fail:addr:<ip>` | counter | TTL: the throttle window |
/// | `feed:{feed}:cursor:<name>` | hash ms, seq, chain, batch, acked_ms, stats_day, pending | the supervision feed's last acknowledged position per endpoint (`FeedCursorStore`); kept |
/// | `{<chain>}:audit:archived` | hash id, hash, count, segments, manifest | an audit chain's archive anchor (`AuditArchive`): moved by each archive run; kept with the chain |
public struct GridKeys: Sendable, Hashable {
    public let prefix: KeyPrefix

    public init(prefix: KeyPrefix = .default) { self.prefix = prefix }

    var p: String { prefix.value }

    // MARK: Studies

    /// The keys of one study: all share the hash tag `{s:<uid>}` (one cluster slot), so the
    /// study's scripts touch them and its own audit chain atomically.
    public struct Study: Sendable, Hashable {
        public let uid: StudyUID
        /// `<prefix>{s:<uid>}:`
        public let base: String
        public var record: String { base + "study" }
        public var instances: String { base + "instances" }
        public var outcomes: String { base + "outcomes" }
        /// Worklist thumbnails (PNG) by series UID.
        public var thumbnails: String { base + "thumbs" }
        /// The expert's report (draft, signed, addenda) as JSON.
        public var report: String { base + "report" }
        public func blob(_ sop: SOPInstanceUID) -> String { base + "blob:" + sop.rawValue }
        /// The study's audit chain name (also its hash tag).
        public var auditChain: String { "s:" + uid.rawValue }
    }

    public func study(_ uid: StudyUID) -> Study { Study(uid: uid, base: "\(p){s:\(uid.rawValue)}:") }

    public var allStudies: String { p + "studies:all" }
    public var dueStudies: String { p + "studies:due" }
    public func studies(in state: StudyState) -> String { p + "studies:state:" + state.rawValue }
    /// Commits and late instances, for the coordinators (field `study`, optional `late`).
    public var committedStream: String { p + "studies:committed" }

    // MARK: Coordinator and sites

    public func caseStudy(_ id: CaseID) -> String { p + "coord:case:" + id.rawValue }
    public var siteRegions: String { p + "sites:region" }
    /// `sites:policy`: hash site (or `*`) → JSON policy (priorities, uploads per minute).
    public var sitePolicies: String { p + "sites:policy" }
    /// `sites:uploads:<site>:<minute>`: uploads started in that minute; TTL 120 s.
    public func siteUploadCount(_ site: SiteID, minute: Int64) -> String { p + "sites:uploads:\(site.rawValue):\(minute)" }
    /// `sites:open:<site>`: the site's studies not yet ended (its open-studies quota).
    public func siteOpenStudies(_ site: SiteID) -> String { p + "sites:open:" + site.rawValue }
    /// Turnaround counters of reported studies (`Coordinator.Turnaround`).
    public var turnaround: String { p + "turnaround" }
    public func siteUploads(_ site: SiteID) -> String { p + "sites:uploading:" + site.rawValue }
    public var siteTokens: String { p + "gateway:tokens" }
    /// DICOM network: calling AE title → the site it is and where it may call from.
    public var dicomCallers: String { p + "sites:dicom:callers" }
    /// DICOM network: site → the PACS results are sent back to.
    public var dicomDestinations: String { p + "sites:dicom:pacs" }
    /// Results waiting to be sent back over C-STORE (one hash tag: the outbox scripts).
    public var dicomOutboxDue: String { p + "dimse:{out}:due" }
    public var dicomOutboxDead: String { p + "dimse:{out}:dead" }
    public var dicomOutboxJobPrefix: String { p + "dimse:{out}:job:" }

    // MARK: Portal accounts and sessions

    public func account(_ user: String) -> String { p + "accounts:" + user }
    public func session(tokenHash: String) -> String { p + "sessions:" + tokenHash }
    public func userSessions(_ user: String) -> String { p + "sessions:user:" + user }
    public func loginFailures(user: String) -> String { p + "login:fail:user:" + user }
    public func loginFailures(address: String) -> String { p + "login:fail:addr:" + address }

    // MARK: Workers

    public func worker(_ name: String) -> String { p + "workers:" + name }
    public var workers: String { p + "workers" }

    // MARK: Queue and router (their own layouts start here)

    /// The task queue every study's work runs in.
    public static let taskQueue = "tasks"
    /// The `ai` stage's queue (model inference), served by workers started with `--stages ai`.
    public static let modelQueue = "ai"
    /// The study task's rule-based screen, waiting for the model task (`{q:ai}` slot, TTL 1 day,
    /// deleted by the model task's completion).
    public func pendingScreening(_ modelTaskKey: String) -> String { "\(p){q:\(Self.modelQueue)}:screening:\(modelTaskKey)" }
    public var modelDeadLetterStream: String { "\(p){q:\(Self.modelQueue)}:dead" }
    /// The queue names of `base` split into `shards` (`tasks` unsharded; `tasks:0` … otherwise),
    /// as `ShardedTaskQueue` names them.
    public static func queueNames(_ base: String, shards: Int) -> [String] {
        shards <= 1 ? [base] : (0..<shards).map { "\(base):\($0)" }
    }
    /// The same keys in one shard of a sharded queue (`tasks:2`, `ai:0`; see `ShardedTaskQueue`):
    /// each lives in its shard's slot, where that shard's completion scripts write it.
    public func screenedStream(queue: String) -> String { "\(p){q:\(queue)}:screened" }
    public func deadLetterStream(queue: String) -> String { "\(p){q:\(queue)}:dead" }
    public func pendingScreening(_ modelTaskKey: String, queue: String) -> String { "\(p){q:\(queue)}:screening:\(modelTaskKey)" }
    /// The stream the study task's completion appends to (`{q:tasks}` slot, written by the
    /// completion script): screened studies for the coordinators.
    public var screenedStream: String { "\(p){q:\(Self.taskQueue)}:screened" }
    /// The queue's dead letters (read by the coordinators to fail studies whose task died).
    public var deadLetterStream: String { "\(p){q:\(Self.taskQueue)}:dead" }
    /// The router's event stream (see `CaseEventEntry`).
    public var routerEvents: String { p + "route:{rt}:audit" }
}
