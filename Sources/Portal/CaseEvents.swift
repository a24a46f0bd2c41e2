import Foundation
import GridContract
import Logging
import Metrics
import RadGridCore
import RedisClient
import ServiceLifecycle
import Synchronization

/// Pushes router events to the experts they are about, over server-sent events: one blocking
/// read of the router's event stream per portal process (not one per expert), fanned out to
/// every open stream of the expert named in the entry. Each portal reads the stream itself
/// (no consumer group): every portal serves its own connected experts.
final class CaseEventHub: Service, Sendable {
    /// One event for one expert, ready to write.
    struct Message: Sendable {
        var event: String
        var data: String
    }

    struct Subscribers {
        var next = 0
        var byExpert: [String: [Int: AsyncStream<Message>.Continuation]] = [:]
        var count = 0
    }

    let client: RedisClient
    let stream: String
    let logger: Logger
    let subscribers = Mutex(Subscribers())
    let openStreams = Gauge(label: "radgrid_portal_event_streams")
    let delivered = Counter(label: "radgrid_portal_events_delivered_total")

    init(client: RedisClient, keys: GridKeys, logger: Logger) {
        self.client = client
        self.stream = keys.routerEvents
        self.logger = logger
    }

    /// A stream of the expert's events until the consumer stops reading. Bounded: a client
    /// that stops reading loses old events (it refreshes its worklist on reconnecting anyway).
    func subscribe(expert: String) -> AsyncStream<Message> {
        let (stream, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(256))
        let id = subscribers.withLock { state -> Int in
            state.next += 1
            state.byExpert[expert, default: [:]][state.next] = continuation
            state.count += 1
            return state.next
        }
        openStreams.record(subscribers.withLock { $0.count })
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            let count = self.subscribers.withLock { state -> Int in
                state.byExpert[expert]?[id] = nil
                if state.byExpert[expert]?.isEmpty == true { state.byExpert[expert] = nil }
                state.count -= 1
                return state.count
            }
            self.openStreams.record(count)
        }
        return stream
    }

    var subscriberCount: Int { subscribers.withLock { $0.count } }

    func run() async throws {
        let connection = client.dedicatedConnection(name: "radgrid-portal-events")
        defer { connection.close() }
        // Start after the newest entry: events before this process started are history, and
        // a client reloads its worklist when its stream opens.
        await cancelWhenGracefulShutdown {
            var last: String?
            while !Task.isCancelled {
                do {
                    guard let position = last else {
                        let newest = try await self.client.send("XREVRANGE", RedisArgument(self.stream), "+", "-", "COUNT", "1")
                        last = Self.rangeEntries(newest).first?.id ?? "0-0"
                        continue
                    }
                    let reply = try await connection.send(["XREAD", "COUNT", "512", "BLOCK", "2000", "STREAMS", RedisArgument(self.stream), RedisArgument(position)],
                                                          blockingFor: .seconds(2))
                    for entry in Self.entries(reply) {
                        last = entry.id
                        self.dispatch(entry)
                    }
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning("router event stream read failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
        subscribers.withLock { state in
            for continuation in state.byExpert.values.flatMap(\.values) { continuation.finish() }
        }
    }

    /// Entries of an XREAD reply (`[[stream, [entries]]]`).
    static func entries(_ reply: RedisValue) -> [StreamEntry] {
        (reply.array ?? []).flatMap { stream in rangeEntries(stream.array?.last ?? .null) }
    }

    /// Entries of an XRANGE / XREVRANGE reply (`[[id, [field, value, ...]], ...]`).
    static func rangeEntries(_ reply: RedisValue) -> [StreamEntry] {
        (reply.array ?? []).compactMap { item in
            guard let pair = item.array, pair.count == 2, let id = pair[0].string else { return nil }
            var fields: [String: RedisValue] = [:]
            let flat = pair[1].array ?? []
            for i in stride(from: 0, to: flat.count - 1, by: 2) { if let key = flat[i].string { fields[key] = flat[i + 1] } }
            return StreamEntry(id: id, fields: fields)
        }
    }

    func dispatch(_ entry: StreamEntry) {
        let fields = entry.text
        // Most events are about experts not connected here: look them up before parsing.
        guard let named = fields["expert"] ?? CaseEventEntry.details(fields["details"] ?? "")["expert"], !named.isEmpty else { return }
        let targets = subscribers.withLock { state in state.byExpert[named].map { Array($0.values) } ?? [] }
        guard !targets.isEmpty, let parsed = try? CaseEventEntry.parse(id: entry.id, fields: fields), parsed.event.expert?.rawValue == named else { return }
        let message: Message
        switch parsed.event {
        case .offered:
            let details = CaseEventEntry.details(fields["details"] ?? "")
            var object: [String: Any] = ["case": parsed.caseID.rawValue, "time_ms": parsed.time, "entry": entry.id]
            if let level = details["level"] { object["level"] = Int(level) ?? 0 }
            message = Message(event: "offer", data: Self.json(object))
        default:
            message = Message(event: "case", data: Self.json(["case": parsed.caseID.rawValue, "action": fields["action"] ?? "", "time_ms": parsed.time, "entry": entry.id]))
        }
        for continuation in targets { continuation.yield(message) }
        delivered.increment(by: targets.count)
    }

    static func json(_ object: [String: Any]) -> String {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
