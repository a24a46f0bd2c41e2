import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// One entry of a Redis stream.
public struct StreamEntry: Sendable {
    public let id: String
    public let fields: [String: RedisValue]

    public init(id: String, fields: [String: RedisValue]) {
        self.id = id
        self.fields = fields
    }

    /// Text fields only (what most consumers read).
    public var text: [String: String] { fields.compactMapValues(\.string) }
}

/// A consumer-group reader of one stream, as a `Service`: the one loop behind every process
/// that consumes a stream (coordinator, router, audit chainer).
///
/// - reads its own pending entries first (a restart resumes where it stopped), then new ones
///   in batches, blocking on a dedicated connection;
/// - every `claimIdle / 2`, takes over entries another consumer left idle past `claimIdle`
///   (a crashed process's);
/// - acknowledges an entry only after the handler succeeded with it; a failed entry stays
///   pending and is delivered again after `claimIdle` (an entry that failed `maxFailures`
///   times in this process is acknowledged and counted as dropped, so one poison entry
///   cannot stall the stream);
/// - reads one stream per call, so each read stays within one cluster slot.
public struct StreamConsumer: Service {
    public struct Configuration: Sendable {
        public var stream: String
        public var group: String
        public var consumer: String
        public var batch = 64
        public var block: Duration = .seconds(1)
        public var claimIdle: Duration = .seconds(30)
        public var maxFailures = 20
        /// Where a new group starts: `0` (the whole stream) or `$` (new entries only).
        public var startAt = "0"

        public init(stream: String, group: String, consumer: String) {
            self.stream = stream
            self.group = group
            self.consumer = consumer
        }
    }

    /// The ids the handler is done with; entries it leaves out stay pending. A handler that
    /// acknowledges entries itself (inside a script) returns them in `acknowledged`.
    public struct BatchResult: Sendable {
        public var done: [String]
        public var acknowledged: [String]
        public init(done: [String] = [], acknowledged: [String] = []) {
            self.done = done
            self.acknowledged = acknowledged
        }
    }

    public typealias BatchHandler = @Sendable ([StreamEntry]) async -> BatchResult

    public let client: RedisClient
    public let configuration: Configuration
    let handler: BatchHandler
    let logger: Logger
    let failures = FailureCounts()

    /// A consumer that handles a batch at once.
    public init(client: RedisClient, configuration: Configuration, logger: Logger, batchHandler: @escaping BatchHandler) {
        self.client = client
        self.configuration = configuration
        self.handler = batchHandler
        self.logger = logger
    }

    /// A consumer that handles entries one by one: an entry is done when `handler` returns.
    public init(client: RedisClient, configuration: Configuration, logger: Logger, handler: @escaping @Sendable (StreamEntry) async throws -> Void) {
        let stream = configuration.stream
        self.init(client: client, configuration: configuration, logger: logger) { entries in
            var result = BatchResult()
            for entry in entries {
                do {
                    try await handler(entry)
                    result.done.append(entry.id)
                } catch {
                    logger.warning("stream entry failed; it stays pending", metadata: ["stream": "\(stream)", "entry": "\(entry.id)", "error": "\(error)"])
                }
            }
            return result
        }
    }

    public func run() async throws {
        try await ensureGroup()
        await cancelWhenGracefulShutdown {
            await consume()
        }
    }

    /// Creates the group (idempotent).
    public func ensureGroup() async throws {
        do {
            try await client.send("XGROUP", "CREATE", RedisArgument(configuration.stream), RedisArgument(configuration.group),
                                  RedisArgument(configuration.startAt), "MKSTREAM")
        } catch where error.isServerError("BUSYGROUP") {}
    }

    func consume() async {
        let connection = client.dedicatedConnection(name: "radgrid-stream-\(configuration.group)")
        defer { connection.close() }
        var ownPendingRead = false
        var lastClaim = ContinuousClock.now - configuration.claimIdle
        while !Task.isCancelled {
            do {
                if !ownPendingRead {
                    // After a restart: entries this consumer took but never acknowledged.
                    while !Task.isCancelled {
                        let entries = try await read(id: "0", on: nil)
                        if entries.isEmpty { break }
                        await process(entries)
                        if entries.count < configuration.batch { break }
                    }
                    ownPendingRead = true
                }
                if ContinuousClock.now - lastClaim >= configuration.claimIdle / 2 {
                    lastClaim = .now
                    try await claimIdleEntries()
                }
                let entries = try await read(id: ">", on: connection)
                if !entries.isEmpty { await process(entries) }
            } catch {
                if Task.isCancelled { break }
                logger.warning("stream read failed, retrying", metadata: ["stream": "\(configuration.stream)", "error": "\(error)"])
                if (error as? RedisError)?.isServerError("NOGROUP") == true {
                    // The stream was deleted (or Redis lost it): recreate the group.
                    try? await ensureGroup()
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    func read(id: String, on connection: RedisDedicatedConnection?) async throws -> [StreamEntry] {
        var arguments: [RedisArgument] = ["XREADGROUP", "GROUP", RedisArgument(configuration.group), RedisArgument(configuration.consumer),
                                          "COUNT", RedisArgument(configuration.batch)]
        let reply: RedisValue
        if let connection {
            arguments += ["BLOCK", RedisArgument(Int(configuration.block.components.seconds * 1000 + configuration.block.components.attoseconds / 1_000_000_000_000_000)),
                          "STREAMS", RedisArgument(configuration.stream), RedisArgument(id)]
            reply = try await connection.send(arguments, blockingFor: configuration.block)
        } else {
            arguments += ["STREAMS", RedisArgument(configuration.stream), RedisArgument(id)]
            reply = try await client.send(arguments)
        }
        return Self.entries(reply.array?.first?.array?.dropFirst().first ?? .null)
    }

    func claimIdleEntries() async throws {
        var cursor = "0-0"
        repeat {
            let reply = try await client.send("XAUTOCLAIM", RedisArgument(configuration.stream), RedisArgument(configuration.group),
                                              RedisArgument(configuration.consumer), RedisArgument(configuration.claimIdle.components.seconds * 1000),
                                              RedisArgument(cursor), "COUNT", RedisArgument(configuration.batch))
            guard let parts = reply.array, parts.count >= 2 else { return }
            cursor = parts[0].string ?? "0-0"
            let entries = Self.entries(parts[1])
            if !entries.isEmpty {
                Counter(label: "radgrid_stream_claimed_total", dimensions: [("stream", metricName)]).increment(by: entries.count)
                await process(entries)
            }
        } while cursor != "0-0" && !Task.isCancelled
    }

    /// Runs the handler on a batch and acknowledges what it finished.
    func process(_ entries: [StreamEntry]) async {
        let result = await handler(entries)
        var finished = Set(result.done)
        var dropped: [String] = []
        for entry in entries where !finished.contains(entry.id) && !result.acknowledged.contains(entry.id) {
            if failures.fail(entry.id) >= configuration.maxFailures {
                dropped.append(entry.id)
                finished.insert(entry.id)
            }
        }
        if !dropped.isEmpty {
            logger.error("stream entries kept failing; acknowledged and dropped", metadata: ["stream": "\(configuration.stream)", "entries": "\(dropped)"])
            Counter(label: "radgrid_stream_entries_total", dimensions: [("stream", metricName), ("outcome", "dropped")]).increment(by: dropped.count)
        }
        let ack = Array(finished)
        for id in ack + result.acknowledged { failures.clear(id) }
        Counter(label: "radgrid_stream_entries_total", dimensions: [("stream", metricName), ("outcome", "done")]).increment(by: result.done.count + result.acknowledged.count)
        let failed = entries.count - result.done.count - result.acknowledged.count - dropped.count
        if failed > 0 { Counter(label: "radgrid_stream_entries_total", dimensions: [("stream", metricName), ("outcome", "failed")]).increment(by: failed) }
        guard !ack.isEmpty else { return }
        do {
            try await client.send(["XACK", RedisArgument(configuration.stream), RedisArgument(configuration.group)] + ack.map { RedisArgument($0) })
        } catch {
            // Unacknowledged entries come back after claimIdle; handlers are idempotent.
            logger.warning("acknowledgement failed", metadata: ["stream": "\(configuration.stream)", "error": "\(error)"])
        }
    }

    /// The stream's name without the key prefix and hash tag braces, for metric labels.
    var metricName: String {
        String(configuration.stream.split(separator: ":").suffix(2).joined(separator: ":").filter { $0 != "{" && $0 != "}" })
    }

    static func entries(_ value: RedisValue) -> [StreamEntry] {
        (value.array ?? []).compactMap { entry in
            guard let pair = entry.array, pair.count == 2, let id = pair[0].string else { return nil }
            return StreamEntry(id: id, fields: pair[1].fieldMap ?? [:])
        }
    }
}

/// Failures per entry id in this process (bounded: entries are cleared when done or dropped).
final class FailureCounts: Sendable {
    let counts = Mutex<[String: Int]>([:])

    func fail(_ id: String) -> Int {
        counts.withLock { map in
            let n = (map[id] ?? 0) + 1
            map[id] = n
            return n
        }
    }

    func clear(_ id: String) { _ = counts.withLock { $0.removeValue(forKey: id) } }
}
