import ServiceLifecycle

/// The client is a `Service`: put it first in a `ServiceGroup`, before the services that use
/// it. The group stops services in reverse order, so the client closes last, after every user
/// has drained, and also when any service fails.
extension RedisClient: Service {
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }
}
