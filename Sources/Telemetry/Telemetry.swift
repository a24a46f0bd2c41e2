import Hummingbird
import Logging
import Metrics
import Prometheus
import RadGridCore

/// Prometheus export for the daemons: swift-metrics is bootstrapped once per process with
/// a Prometheus registry, and `/metrics` renders it in the text exposition format.
public enum Telemetry {
    /// The registry every daemon's metrics land in.
    public static let registry = PrometheusCollectorRegistry()

    /// Call once at process start, before any metric is created.
    public static func bootstrap() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// The exposition text of every metric so far.
    public static func render() -> [UInt8] { registry.emitToBuffer() }

    /// Adds `GET /metrics` to an existing Hummingbird router (the gateway serves it on its own port).
    public static func addRoute<Context: RequestContext>(to router: Router<Context>) {
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: render())))
        }
    }

    /// A small HTTP service that serves only `/metrics` and `/health`, for daemons without
    /// an HTTP API of their own (workers, router, coordinator). Port 0 disables it.
    public static func metricsServer(host: String, port: Int, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        addRoute(to: router)
        router.get("/health") { _, _ in "ok\n" }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "radgrid-metrics"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
