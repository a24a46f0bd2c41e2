import ArgumentParser
import RadGridCore

/// Options every command and daemon shares: where Redis is and which key prefix to use.
public struct RedisOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("redis"), help: ArgumentHelp("Redis URL (redis://[user:pass@]host:port/db or unix:///path).", valueName: "url"))
    public var url: String?

    @Option(name: .customLong("prefix"), help: "Prefix of every Redis key of this grid.")
    public var prefix: String = KeyPrefix.default.value

    public init() {}

    /// `--redis`, else `REDIS_URL`, else `redis://127.0.0.1:6379`.
    public var resolvedURL: String { RedisEndpoint.resolve(option: url) }

    public var keyPrefix: KeyPrefix { KeyPrefix(prefix) }
}
