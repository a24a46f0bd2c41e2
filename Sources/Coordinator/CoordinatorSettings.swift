#if canImport(Glibc)
import Glibc
#endif
import GridContract
import RadGridCore
import Routing
import StudyLifecycle

/// Settings of the coordinator.
public struct CoordinatorSettings: Sendable {
    public var prefix: KeyPrefix = .default
    public var lifecycle = LifecycleSettings()
    public var consumerName = "coordinator-\(getpid())"
    /// Stream entries idle this long in another coordinator's pending list (a dead one's) are taken over.
    public var claimIdle: Duration = .seconds(30)
    /// Each sweeper claims a due study for this long (another coordinator takes it after).
    public var sweepLease: Duration = .seconds(30)
    /// The task queue's lease, used only to judge tasks alive.
    public var routing: RoutingConfig = .standard
    /// Shards of the task queues (`--queue-shards`): the same in every process of the grid.
    public var queueShards = 1
    public init() {}
}
