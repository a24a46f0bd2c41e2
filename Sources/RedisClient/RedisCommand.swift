/// One argument of a Redis command: raw bytes, so values may contain NUL bytes.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(_ substring: Substring) { self.bytes = Array(substring.utf8) }
    public init<Integer: BinaryInteger>(_ value: Integer) { self.bytes = Array(String(value).utf8) }
    /// Doubles are sent in Redis's accepted notation; infinities as `+inf` / `-inf`.
    public init(_ value: Double) {
        if value == .infinity { bytes = Array("+inf".utf8) }
        else if value == -.infinity { bytes = Array("-inf".utf8) }
        else { bytes = Array(String(value).utf8) }
    }

    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}

/// A command to send, plain or as a script invocation.
///
/// Script commands carry their `RedisScript` so a pipeline can load the script and
/// replay the command when the server answers `NOSCRIPT` (after a restart or SCRIPT FLUSH).
public struct RedisCommand: Sendable {
    public var arguments: [RedisArgument]
    public var script: RedisScript?

    public init(_ arguments: [RedisArgument]) {
        self.arguments = arguments
        self.script = nil
    }

    public init(_ arguments: RedisArgument...) { self.init(arguments) }

    /// `EVALSHA sha numkeys keys... args...`.
    public static func script(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []) -> RedisCommand {
        var command = RedisCommand(["EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count)] + keys + arguments)
        command.script = script
        return command
    }

    /// The command name for metrics and logs (never the arguments: they may hold PHI).
    var name: String {
        guard let first = arguments.first else { return "" }
        return String(decoding: first.bytes, as: UTF8.self).uppercased()
    }
}
