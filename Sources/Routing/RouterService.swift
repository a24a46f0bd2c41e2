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
        let chainer = router.auditChainer(logger: logger)
        try await chainer.prepare()
        var configuration = StreamConsumer.Configuration(stream: router.keys.intake, group: Self.consumerGroup, consumer: consumer)
        configuration.claimIdle = claimIdle
        let intake = StreamConsumer(client: router.redis, configuration: configuration, logger: logger) { entry in
            try await handle(entry)
        }
        try await intake.ensureGroup()
        try await router.sweepAll()
        logger.info("router started", metadata: ["consumer": "\(consumer)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await intake.run() }
            group.addTask { try await chainer.consumer(named: consumer).run() }
            group.addTask { await cancelWhenGracefulShutdown { await controlLoop() } }
            try await group.waitForAll()
        }
        logger.info("router stopped", metadata: ["consumer": "\(consumer)"])
    }

    /// One intake entry: a case to register and route. Entries that can never be routed
    /// (malformed) are logged by code and entry id, and done.
    func handle(_ entry: StreamEntry) async throws {
        do {
            let request = try router.request(fromIntake: entry.text)
            try await router.submitCase(request)
        } catch let error as RoutingError {
            logger.error("intake entry rejected", metadata: ["entry": "\(entry.id)", "code": "\(error.code)", "problem": "\(error.message)"])
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
