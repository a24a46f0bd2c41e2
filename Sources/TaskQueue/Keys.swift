import RadGridCore
import RedisClient

/// The Redis keys of one queue. Every key carries the hash tag `{q:<name>}` so that all of a
/// queue's keys live in one Cluster slot and its scripts may touch any of them.
///
/// `rg:{q:tasks}:lane:stat` … `:lane:bulk`   streams, consumer group `workers`; one entry per delivery
///                                            (fields k, p, m, g); its PEL entry is the lease
/// `rg:{q:tasks}:state`                       hash: task key → record, `q …`, `c …` or `d`+MessagePack (see `Lua/_queue.lua`)
/// `rg:{q:tasks}:delayed:<lane>`              zset: task key → retry due time (server ms)
/// `rg:{q:tasks}:dead`                        stream: dead letters (capped, trimmed by age)
/// `rg:{q:tasks}:completed`                   list: completed task keys in completion order (idempotency window)
/// `rg:{q:tasks}:groups`, `:groups:age`,      hash gid → fan-in record (next task); zset gid → creation time;
/// `rg:{q:tasks}:groups:left`                 hash gid → members not yet completed
/// `rg:{q:tasks}:result:<task key>`           string with TTL: the handler's result
public struct QueueKeys: Sendable {
    public let name: String
    /// `rg:{q:<name>}:` — every key of the queue starts with it.
    public let base: String
    public let lanes: [String]
    public let state: String
    public let delayed: [String]
    public let dead: String
    public let done: String
    public let groups: String
    public let groupsAge: String
    public let groupsLeft: String
    /// The 14 keys every script receives, in the order the table `K` of `Lua/_queue.lua` names them.
    let scriptKeys: [RedisArgument]

    public init(prefix: KeyPrefix, name: String) {
        self.name = name
        let base = "\(prefix.value){q:\(name)}:"
        self.base = base
        lanes = Lane.allCases.map { "\(base)lane:\($0.rawValue)" }
        state = base + "state"
        delayed = Lane.allCases.map { "\(base)delayed:\($0.rawValue)" }
        let lanes = self.lanes, delayed = self.delayed
        dead = base + "dead"
        done = base + "completed"
        groups = base + "groups"
        groupsAge = base + "groups:age"
        groupsLeft = base + "groups:left"
        scriptKeys = (lanes + [state] + delayed + [dead, done, groups, groupsAge, groupsLeft]).map { RedisArgument($0) }
    }

    public func lane(_ lane: Lane) -> String { lanes[lane.index - 1] }
    public func delayed(_ lane: Lane) -> String { delayed[lane.index - 1] }
    public func result(_ taskKey: String) -> String { base + "result:" + taskKey }

    /// A key of your own in this queue's slot (for completion effects): `rg:{q:<name>}:<suffix>`.
    public func custom(_ suffix: String) -> String { base + suffix }

    /// The hash tag, which keys used in completion effects must contain.
    public var hashTag: String { "{q:\(name)}" }
}
