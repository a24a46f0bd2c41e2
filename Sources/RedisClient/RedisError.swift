import RadGridCore

/// An error from the Redis client. `code` is stable; `message` never holds command
/// arguments (they may carry patient data) — only the server's own error text or the
/// transport's description.
public struct RedisError: CodedError, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let raw: String
        /// The server could not be reached (refused, DNS, auth or SELECT failed).
        public static let connection = Code(raw: "redis.connection")
        /// The connection broke while a command was in flight: it may or may not have run.
        public static let connectionLost = Code(raw: "redis.connectionLost")
        /// No reply within the command timeout; the connection is dropped and reopened.
        public static let timeout = Code(raw: "redis.timeout")
        /// The reply could not be parsed.
        public static let `protocol` = Code(raw: "redis.protocol")
        /// The server answered with an error reply (`message` is its text).
        public static let server = Code(raw: "redis.server")
        /// The URL could not be understood.
        public static let invalidURL = Code(raw: "redis.invalidURL")
        /// The client was shut down.
        public static let closed = Code(raw: "redis.closed")
        /// A reply had an unexpected shape for the typed helper that read it.
        public static let unexpectedReply = Code(raw: "redis.unexpectedReply")
        /// A durable write reached the master but fewer replicas than asked acknowledged it
        /// in time: it may be lost if the master fails now.
        public static let notReplicated = Code(raw: "redis.notReplicated")

        public var description: String { raw }
    }

    public let kind: Code
    public let message: String

    public var code: String { kind.raw }

    public init(_ kind: Code, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static func server(_ message: String) -> RedisError { RedisError(.server, message) }

    /// True for server errors whose text starts with `prefix` (e.g. `NOSCRIPT`, `BUSYGROUP`).
    public func isServerError(_ prefix: String) -> Bool {
        kind == .server && message.hasPrefix(prefix)
    }

    /// Transport failures after which retrying on a fresh connection makes sense.
    public var isConnectionFailure: Bool {
        kind == .connection || kind == .connectionLost || kind == .timeout
    }
}
