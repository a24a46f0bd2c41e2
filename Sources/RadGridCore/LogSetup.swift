import Logging

/// Command-line options every daemon and command shares.
public enum LogSetup {
    /// Bootstraps swift-log once per process: logs to stderr at `level`
    /// (`RADGRID_LOG_LEVEL` overrides).
    public static func bootstrap(level: Logger.Level = .info) {
        let resolved = ProcessEnvironment.value("RADGRID_LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = resolved
            return handler
        }
    }
}
