/// The contract every RadGrid error follows: an opaque, stable `code` that scripts and
/// dashboards can match on, and a `message` for people.
///
/// Messages name the problem (a tag, an offset, a key, a limit) and never carry patient
/// data or secrets, so errors can be logged, returned over HTTP and written to the audit
/// trail as they are.
public protocol CodedError: Error, CustomStringConvertible, Sendable {
    /// Stable machine-readable code, e.g. `redis.connection` or `dicom.truncated`.
    var code: String { get }
    /// Human-readable description without PHI or secrets.
    var message: String { get }
}

extension CodedError {
    public var description: String { "\(code): \(message)" }
}

/// A small error for places that have no richer type of their own (argument validation,
/// configuration); modules define their own `struct XError: CodedError` for anything else.
public struct RadGridError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}
