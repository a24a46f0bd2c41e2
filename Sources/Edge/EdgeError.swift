import RadGridCore

/// Errors of the edge gateway; none names patient data.
public struct EdgeError: CodedError, Equatable {
    public enum Code: String, Sendable {
        /// The spool is at its limit, or its disk nearly full: refuse now, the sender retries.
        case spoolFull
        /// The spool's files or index failed.
        case spool
        /// An instance the grid could never take (unreadable, without its UIDs).
        case invalidInstance
        /// The upstream answered with an error or could not be reached.
        case upstream
        case configuration
    }

    public let codeValue: Code
    public let message: String
    public var code: String { "edge.\(codeValue.rawValue)" }

    public init(_ code: Code, _ message: String) {
        self.codeValue = code
        self.message = message
    }
}
