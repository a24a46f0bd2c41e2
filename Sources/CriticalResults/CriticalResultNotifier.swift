import AsyncHTTPClient
import Foundation
import GridContract
import Logging
import Metrics
import NIOCore
import RadGridCore
import ServiceLifecycle

/// Delivers critical-result webhooks and escalates unacknowledged results. Leader-free: any
/// number may run; each pass escalates what is due (once per level, in a script) and leases
/// due deliveries (a claim script), so no delivery is sent by two notifiers at once and a
/// notifier that dies hands its leases on when they expire.
///
/// A delivery is a signed POST (see `WebhookSignature`); a 2xx answer is success, anything else
/// or no answer within the policy's timeout is a failure, retried with a doubling backoff and
/// dead-lettered after the last attempt.
public final class CriticalResultNotifier: Service, Sendable {
    public let store: CriticalResultStore
    let clock: @Sendable () -> Int64
    let pollInterval: Duration
    let batchSize: Int
    let http: HTTPClient
    let logger: Logger
    let delivered = Counter(label: "radgrid_critical_delivered_total")
    let failed = Counter(label: "radgrid_critical_failed_total")
    let dead = Counter(label: "radgrid_critical_dead_total")
    let escalated = Counter(label: "radgrid_critical_escalated_total")
    let unacknowledged = Gauge(label: "radgrid_critical_unacknowledged")

    /// `clock` gives the time in ms (tests inject their own); the notifier owns its HTTP
    /// client (no redirects: a webhook answers itself) and shuts it down when `run` ends, or
    /// call `shutdown()` when only `pass()` was used.
    public init(store: CriticalResultStore, clock: @escaping @Sendable () -> Int64 = { WallClock.nowMilliseconds() },
                pollInterval: Duration = .milliseconds(500), batchSize: Int = 16,
                logger: Logger = Logger(label: "radgrid.critical")) {
        self.store = store
        self.clock = clock
        self.pollInterval = pollInterval
        self.batchSize = batchSize
        self.logger = logger
        let timeout = TimeAmount.milliseconds(store.policy.requestTimeoutMs)
        let configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: timeout, read: timeout),
                                                     connectionPool: .init())
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func run() async throws {
        logger.info("critical-result notifier started")
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var full = false
                do {
                    full = try await self.pass().claimed >= self.batchSize
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning("critical-result pass failed", metadata: ["error": "\(error)"])
                }
                if !full { try? await Task.sleep(for: self.pollInterval) }
            }
        }
        try await shutdown()
        logger.info("critical-result notifier stopped")
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// What one pass did.
    public struct PassSummary: Sendable, Equatable {
        public var escalated = 0
        public var claimed = 0
        public var delivered = 0
        public var failed = 0
        public var dead = 0

        public init() {}
    }

    /// One pass: escalate what is due, deliver what is due (concurrently), record the outcomes.
    @discardableResult
    public func pass() async throws -> PassSummary {
        var summary = PassSummary()
        let escalations = try await store.escalateDue(now: clock())
        summary.escalated = escalations.count
        escalated.increment(by: escalations.count)
        for escalation in escalations {
            logger.notice("critical result escalated", metadata: ["result": "\(escalation.member)", "level": "\(escalation.level)"])
        }
        let token = UUID().uuidString
        let claims = try await store.claimDeliveries(now: clock(), limit: batchSize, token: token)
        summary.claimed = claims.count
        let outcomes = await withTaskGroup(of: (CriticalResultStore.DeliveryClaim, CriticalResultStore.DeliveryOutcome).self) { group in
            for claim in claims { group.addTask { (claim, await self.deliver(claim)) } }
            var all: [(CriticalResultStore.DeliveryClaim, CriticalResultStore.DeliveryOutcome)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        for (claim, outcome) in outcomes {
            let metadata: Logger.Metadata = ["result": "\(claim.result.id)", "level": "\(claim.level)", "attempt": "\(claim.attempt)"]
            let recorded: CriticalResultStore.RecordedDelivery
            do {
                recorded = try await store.record(claim, outcome: outcome, now: clock())
            } catch {
                // Unrecorded, the lease runs out and the delivery is tried again: record the others.
                logger.warning("critical-result outcome not recorded", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                continue
            }
            switch recorded {
            case .delivered:
                summary.delivered += 1
                delivered.increment()
            case .retry(let due):
                summary.failed += 1
                failed.increment()
                if case .failed(let code) = outcome {
                    logger.warning("critical-result delivery failed; will retry", metadata: metadata.merging(["error": "\(code)", "retryAt": "\(due)"]) { $1 })
                }
            case .dead:
                summary.failed += 1
                summary.dead += 1
                failed.increment()
                dead.increment()
                logger.error("critical-result delivery dead-lettered", metadata: metadata)
            case .stale, .gone:
                break
            }
        }
        unacknowledged.record(try await store.unacknowledgedCount())
        return summary
    }

    /// Sends one delivery; never throws (a failure is an outcome to record).
    func deliver(_ claim: CriticalResultStore.DeliveryClaim) async -> CriticalResultStore.DeliveryOutcome {
        let endpoint: WebhookEndpoint
        do {
            guard let configured = try await store.endpoint(site: claim.result.site, level: claim.level) else {
                return .failed(CriticalResultError.Code.noWebhook.rawValue)
            }
            endpoint = configured
        } catch {
            return .failed("critical.configUnavailable")
        }
        let body = WebhookBody.make(result: claim.result, level: claim.level, attempt: claim.attempt)
        let timestamp = clock() / 1000
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "radgrid-critical/1")
        request.headers.add(name: WebhookSignature.timestampHeader, value: String(timestamp))
        request.headers.add(name: WebhookSignature.signatureHeader, value: WebhookSignature.sign(body: body, timestamp: timestamp, secret: endpoint.secret))
        request.headers.add(name: WebhookSignature.deliveryHeader, value: claim.result.deliveryID(level: claim.level))
        request.headers.add(name: WebhookSignature.eventHeader, value: CriticalTarget(level: claim.level)?.event ?? "critical.escalated")
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: .milliseconds(store.policy.requestTimeoutMs))
            // Drain a little of the answer so the connection can be reused; its content is not ours to keep.
            _ = try? await response.body.collect(upTo: 64 << 10)
            return (200..<300).contains(Int(response.status.code)) ? .delivered : .failed("http \(response.status.code)")
        } catch let error as HTTPClientError {
            return .failed("critical.transport: \(String(describing: error).prefix(120))")
        } catch {
            // Connection errors name the endpoint at most; nothing of the study.
            return .failed("critical.transport: \(String(describing: type(of: error)))")
        }
    }
}
