import Audit
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle

/// The `radgrid router` daemon: consumes the intake stream, runs due timers (accept
/// timeouts, SLA deadlines, widening, ageing), re-evaluates experts whose shift or heartbeat
/// changes, and drains waiting cases whenever capacity frees (BLPOP on the wake list, so no
/// busy polling). Any number of routers may run against one Redis.
public struct RouterService: Service {
    public static let consumerGroup = "routers"

    let router: ExpertRouter
    let consumer: String
    let logger: Logger
    /// Intake entries idle this long in another router's pending list are taken over.
    let claimIdle: Duration

    public init(router: ExpertRouter, consumer: String, claimIdle: Duration = .seconds(30), logger: Logger = Logger(label: "radgrid.router")) {
        self.router = router
        self.consumer = consumer
        self.claimIdle = claimIdle
        self.logger = logger
    }

    public func run() async throws {
        try await ensureGroup()
        let chainer = router.auditChainer(logger: logger)
        try await chainer.prepare()
        try await router.sweepAll()
        logger.info("router started", metadata: ["consumer": "\(consumer)"])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await intakeLoop() }
                group.addTask { await controlLoop() }
                group.addTask { await chainer.run(consumer: consumer) }
            }
        }
        logger.info("router stopped", metadata: ["consumer": "\(consumer)"])
    }

    func ensureGroup() async throws {
        do {
            try await router.redis.send("XGROUP", "CREATE", RedisArgument(router.keys.intake), RedisArgument(Self.consumerGroup), "0", "MKSTREAM")
        } catch where error.isServerError("BUSYGROUP") {}
    }

    // MARK: Intake

    func intakeLoop() async {
        let connection = router.redis.dedicatedConnection(name: "radgrid-router-intake")
        defer { connection.close() }
        var lastClaim = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            do {
                if ContinuousClock.now - lastClaim > claimIdle {
                    lastClaim = .now
                    try await claimStale()
                }
                let reply = try await connection.send([
                    "XREADGROUP", "GROUP", RedisArgument(Self.consumerGroup), RedisArgument(consumer), "COUNT", "64",
                    "BLOCK", "1000", "STREAMS", RedisArgument(router.keys.intake), ">",
                ], blockingFor: .seconds(1))
                for stream in reply.array ?? [] {
                    guard let pair = stream.array, pair.count == 2 else { continue }
                    try await handle(entries: pair[1].array ?? [])
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("intake read failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    func claimStale() async throws {
        let reply = try await router.redis.send("XAUTOCLAIM", RedisArgument(router.keys.intake), RedisArgument(Self.consumerGroup),
                                                RedisArgument(consumer), RedisArgument(claimIdle.components.seconds * 1000), "0-0", "COUNT", "100")
        if let parts = reply.array, parts.count >= 2 { try await handle(entries: parts[1].array ?? []) }
    }

    func handle(entries: [RedisValue]) async throws {
        for entry in entries {
            guard let pair = entry.array, pair.count == 2, let id = pair[0].string else { continue }
            var fields: [String: String] = [:]
            for (key, value) in pair[1].fieldMap ?? [:] { fields[key] = value.string }
            do {
                let request = try router.request(fromIntake: fields)
                try await router.submitCase(request)
            } catch let error as RoutingError {
                // Rejected entries are acknowledged and logged (code and entry id only).
                logger.error("intake entry rejected", metadata: ["entry": "\(id)", "code": "\(error.code)", "problem": "\(error.message)"])
            }
            try await router.redis.send("XACK", RedisArgument(router.keys.intake), RedisArgument(Self.consumerGroup), RedisArgument(id))
        }
    }

    // MARK: Timers, sweeps, waiting cases

    func controlLoop() async {
        let connection = router.redis.dedicatedConnection(name: "radgrid-router-control")
        defer { connection.close() }
        var drainNeeded = true
        var lastDrain = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let timers = try await router.processDueTimers()
                let swept = try await router.sweepDue()
                if drainNeeded || timers > 0 || swept > 0 || ContinuousClock.now - lastDrain > .seconds(5) {
                    try await router.drainWaiting()
                    lastDrain = .now
                }
                drainNeeded = false
                let now = router.now
                let next = try await router.nextDueTime() ?? now + 1000
                let waitMs = min(1000, max(0, next - now))
                if waitMs > 0 {
                    let reply = try await connection.send(["BLPOP", RedisArgument(router.keys.wake), RedisArgument(Double(max(waitMs, 10)) / 1000)],
                                                          blockingFor: .milliseconds(waitMs + 10))
                    if !reply.isNull {
                        // One pass serves every signal that piled up meanwhile.
                        try await router.redis.send("DEL", RedisArgument(router.keys.wake))
                        drainNeeded = true
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("router control loop failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}
