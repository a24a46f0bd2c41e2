import Logging
import ServiceLifecycle

/// `radgrid feed`: pushes what is pending every `interval` (`SupervisionFeedPusher`), retrying
/// a failing endpoint for as long as it takes. A refusal (4xx other than 429) stops the
/// service with the error logged and thrown: the batch would be refused again, and skipping it
/// would lose entries, so an operator must fix the cause and restart. One feed per name.
public struct SupervisionFeedService: Service {
    let pusher: SupervisionFeedPusher
    let interval: Duration
    let logger: Logger

    public init(pusher: SupervisionFeedPusher, interval: Duration, logger: Logger) {
        self.pusher = pusher
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let pusher = pusher, interval = interval, logger = logger
        logger.info("supervision feed started", metadata: ["name": "\(pusher.settings.name)", "endpoint": "\(pusher.settings.endpoint)"])
        let refusal = await cancelWhenGracefulShutdown { () async -> FeedError? in
            while !Task.isCancelled {
                do {
                    let summary = try await pusher.pushPending()
                    if summary.batches > 0 || summary.statisticsDays > 0 {
                        logger.info("supervision feed pushed", metadata: [
                            "batches": "\(summary.batches)", "entries": "\(summary.entries)", "statistics_days": "\(summary.statisticsDays)",
                        ])
                    }
                } catch let error as FeedError where error.is(.refused) {
                    logger.error("the supervision endpoint refused a batch; the feed stops until the cause is fixed", metadata: ["error": "\(error)"])
                    return error
                } catch {
                    if Task.isCancelled { break }
                    // Redis unreachable or the like: the position is intact, try again later.
                    logger.warning("supervision feed pass failed; will try again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
            return nil
        }
        try await pusher.shutdown()
        logger.info("supervision feed stopped")
        if let refusal { throw refusal }
    }
}
