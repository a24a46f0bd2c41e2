import ArgumentParser
import Foundation
import RadGridCore

/// Options every command and daemon shares: where Redis is and which key prefix to use.
public struct RedisOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("redis"), help: ArgumentHelp("Redis URL (redis://[user:pass@]host:port/db or unix:///path).", valueName: "url"))
    public var url: String?

    @Option(name: .customLong("prefix"), help: "Prefix of every Redis key of this grid.")
    public var prefix: String = KeyPrefix.default.value

    @Option(name: .customLong("queue-shards"), help: ArgumentHelp("Shards of each task queue ({q:tasks:0}…): the same number in every process of one grid (else RADGRID_QUEUE_SHARDS, else 1).", valueName: "n"))
    public var queueShardsOption: Int?

    public init() {}

    /// `--queue-shards`, else `RADGRID_QUEUE_SHARDS`, else 1 (the unsharded layout).
    public var queueShards: Int {
        if let queueShardsOption { return max(1, queueShardsOption) }
        if let text = ProcessInfo.processInfo.environment["RADGRID_QUEUE_SHARDS"], let value = Int(text), value > 0 { return value }
        return 1
    }

    /// `--redis`, else `REDIS_URL`, else `redis://127.0.0.1:6379`.
    public var resolvedURL: String { RedisEndpoint.resolve(option: url) }

    public var keyPrefix: KeyPrefix { KeyPrefix(prefix) }
}
