/// One argument of a Redis command: raw bytes, so values may contain NUL bytes.
///
/// Text is kept as the `String` it came from: a short string (up to 15 UTF-8 bytes, e.g. any
/// integer) needs no heap allocation, and a longer one is shared, not copied, until the
/// command is encoded.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    private enum Storage: Sendable {
        case bytes([UInt8])
        case text(String)
    }

    private var storage: Storage

    public var bytes: [UInt8] {
        switch storage {
        case .bytes(let bytes): bytes
        case .text(let text): Array(text.utf8)
        }
    }

    /// Encoded length in bytes.
    var count: Int {
        switch storage {
        case .bytes(let bytes): bytes.count
        case .text(let text): text.utf8.count
        }
    }

    func append(to buffer: inout [UInt8]) {
        switch storage {
        case .bytes(let bytes): buffer.append(contentsOf: bytes)
        case .text(let text):
            // Native strings are contiguous UTF-8: one copy, not the element-wise generic path.
            var text = text
            text.withUTF8 { buffer.append(contentsOf: $0) }
        }
    }

    public init(bytes: [UInt8]) { storage = .bytes(bytes) }
    public init(_ bytes: [UInt8]) { storage = .bytes(bytes) }
    public init(_ string: String) { storage = .text(string) }
    public init(_ substring: Substring) { storage = .text(String(substring)) }
    public init<Integer: BinaryInteger>(_ value: Integer) { storage = .text(String(value)) }
    /// Doubles are sent in Redis's accepted notation; infinities as `+inf` / `-inf`.
    public init(_ value: Double) {
        if value == .infinity { storage = .text("+inf") }
        else if value == -.infinity { storage = .text("-inf") }
        else { storage = .text(String(value)) }
    }

    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }

    /// Equal when the bytes sent are equal, however the argument was made.
    public static func == (lhs: RedisArgument, rhs: RedisArgument) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.bytes(let a), .bytes(let b)): a == b
        case (.text(let a), .text(let b)): a.utf8.elementsEqual(b.utf8)
        default: lhs.bytes == rhs.bytes
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .bytes(let bytes): hasher.combine(bytes)
        case .text(let text): hasher.combine(Array(text.utf8))
        }
    }
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
