import DIMSE
import Logging
import ServiceLifecycle

/// Everything `radgrid edge` runs, as services for one `ServiceGroup`.
public enum EdgeServices {
    public struct Settings: Sendable {
        public var spoolDirectory: String
        public var spool = EdgeSpool.Settings()
        public var forwarder: EdgeForwarder.Settings
        public var http = EdgeHTTP.Settings()
        /// nil: no DICOM listener.
        public var dimse: StorageSCP.Configuration?
        public var allowedAETitles: Set<String> = []
        public var maxInstanceBytes = 512 << 20

        public init(spoolDirectory: String, upstream: String, token: String) {
            self.spoolDirectory = spoolDirectory
            forwarder = EdgeForwarder.Settings(upstream: upstream, token: token)
        }
    }

    public enum Listener: Sendable { case http, dimse }

    public static func make(_ settings: Settings, logger: Logger,
                            onListening: @escaping @Sendable (Listener, Int) async -> Void = { _, _ in }) throws(EdgeError) -> [any Service] {
        let spool = try EdgeSpool(directory: settings.spoolDirectory, settings: settings.spool, logger: logger)
        let intake = EdgeIntake(spool: spool, maxInstanceBytes: settings.maxInstanceBytes, logger: logger)
        var services: [any Service] = [
            try EdgeForwarder(spool: spool, settings: settings.forwarder, logger: logger),
            EdgeHTTP.make(intake: intake, token: settings.forwarder.token, settings: settings.http, logger: logger) { await onListening(.http, $0) },
        ]
        if var dimse = settings.dimse {
            dimse.maxDataSetBytes = settings.maxInstanceBytes
            let delegate = EdgeDIMSEIntake(intake: intake, allowedAETitles: settings.allowedAETitles, logger: logger)
            services.append(StorageSCP(configuration: dimse, delegate: delegate, logger: logger) { await onListening(.dimse, $0) })
        }
        return services
    }
}
