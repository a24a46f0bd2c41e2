import Logging
import RadGridCore
import RedisClient

/// Moves the entries of an operational audit stream into a hash-chained `AuditTrail`,
/// exactly once, off the hot path.
///
/// Some writers must stay fast (the router's assignment script has a 1 ms budget and a
/// SHA-256 in Lua costs about as much), so they append plain entries to a stream in their
/// own script — the record exists atomically with the transition — and this chainer hashes
/// them into the chain moments later. One script per batch acknowledges each source entry
/// in a consumer group and appends it to the chain only if the acknowledgement was new, so
/// a chainer that dies mid-batch never chains an entry twice or skips one. Several
/// chainers may run; the group shares the work. The source stream and the chain must share
/// a hash tag.
public struct AuditChainer: Sendable {
    /// How to read one source entry: actor, action, study and details.
    public typealias Mapping = @Sendable ([String: RedisValue]) -> (actor: String, action: String, study: String, details: String)

    public let trail: AuditTrail
    public let sourceStream: String
    public let group: String
    let mapping: Mapping
    let logger: Logger

    public init(trail: AuditTrail, sourceStream: String, group: String = "audit-chainer", logger: Logger = Logger(label: "radgrid.audit"), mapping: @escaping Mapping) {
        self.trail = trail
        self.sourceStream = sourceStream
        self.group = group
        self.mapping = mapping
        self.logger = logger
    }

    static let chainScript = RedisScript(AuditLua.chain)

    /// Creates the consumer group (from the stream's start) and registers the chain.
    public func prepare() async throws {
        do {
            try await trail.client.send("XGROUP", "CREATE", RedisArgument(sourceStream), RedisArgument(group), "0", "MKSTREAM")
        } catch where error.isServerError("BUSYGROUP") {}
        try await trail.register()
    }

    /// Chains what `consumer` can read now (its own pending entries first, then new ones,
    /// then entries a dead chainer left idle). Returns how many entries it chained.
    @discardableResult
    public func chainAvailable(consumer: String, batch: Int = 200, block: Duration? = nil, on connection: RedisDedicatedConnection? = nil) async throws -> Int {
        var total = 0
        total += try await chain(try await read(consumer: consumer, id: "0", batch: batch, block: nil, connection: nil))
        total += try await chain(try await read(consumer: consumer, id: ">", batch: batch, block: block, connection: connection))
        let stale = try await trail.client.send("XAUTOCLAIM", RedisArgument(sourceStream), RedisArgument(group), RedisArgument(consumer), "30000", "0-0", "COUNT", RedisArgument(batch))
        total += try await chain(Self.entries(stale.array?.dropFirst().first ?? .null))
        return total
    }

    /// The chainer as a stream consumer (`StreamConsumer`): a service that chains entries as
    /// they arrive, resumes its own pending ones after a restart and takes over a dead
    /// chainer's. Its script acknowledges each entry it chains.
    public func consumer(named consumer: String) -> StreamConsumer {
        var configuration = StreamConsumer.Configuration(stream: sourceStream, group: group, consumer: consumer)
        configuration.batch = 200
        let logger = self.logger
        return StreamConsumer(client: trail.client, configuration: configuration, logger: logger) { entries in
            do {
                _ = try await chain(entries.map { ($0.id, $0.fields) })
                // Every entry of the batch is acknowledged now: chained by this call, or
                // chained (and acknowledged) earlier by a chainer that died before its reply.
                return StreamConsumer.BatchResult(acknowledged: entries.map(\.id))
            } catch {
                logger.warning("audit chaining failed, retrying", metadata: ["stream": "\(sourceStream)", "error": "\(error)"])
                return StreamConsumer.BatchResult()
            }
        }
    }

    private func read(consumer: String, id: String, batch: Int, block: Duration?, connection: RedisDedicatedConnection?) async throws -> [(String, [String: RedisValue])] {
        var arguments: [RedisArgument] = ["XREADGROUP", "GROUP", RedisArgument(group), RedisArgument(consumer), "COUNT", RedisArgument(batch)]
        if let block { arguments += ["BLOCK", RedisArgument(Int(block.components.seconds * 1000))] }
        arguments += ["STREAMS", RedisArgument(sourceStream), RedisArgument(id)]
        let reply: RedisValue
        if let connection, let block {
            reply = try await connection.send(arguments, blockingFor: block)
        } else {
            reply = try await trail.client.send(arguments)
        }
        return Self.entries(reply.array?.first?.array?.dropFirst().first ?? .null)
    }

    static func entries(_ value: RedisValue) -> [(String, [String: RedisValue])] {
        (value.array ?? []).compactMap { entry in
            guard let pair = entry.array, pair.count == 2, let id = pair[0].string else { return nil }
            return (id, pair[1].fieldMap ?? [:])
        }
    }

    func chain(_ entries: [(String, [String: RedisValue])]) async throws -> Int {
        guard !entries.isEmpty else { return 0 }
        var arguments: [RedisArgument] = [RedisArgument(group)]
        for (id, fields) in entries {
            let mapped = mapping(fields)
            arguments += [RedisArgument(id), RedisArgument(mapped.actor), RedisArgument(mapped.action), RedisArgument(mapped.study), RedisArgument(mapped.details)]
        }
        let keys = [RedisArgument(sourceStream), RedisArgument(trail.logKey), RedisArgument(trail.headKey)]
        return Int(try await trail.client.evalScript(Self.chainScript, keys: keys, arguments: arguments).int ?? 0)
    }
}
