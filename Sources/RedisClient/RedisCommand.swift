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

    /// Passes this argument's bytes to `body` without copying them.
    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        switch storage {
        case .bytes(let bytes): return bytes.withUnsafeBytes(body)
        case .text(let text):
            // Native strings are contiguous UTF-8: their bytes are read in place.
            var text = text
            return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
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

/// A command to send, plain or as a script invocation, kept as its RESP encoding.
///
/// Arguments are encoded as they are appended, so a hot path can build a large command (a
/// batch of completions) straight into one buffer, without an array of arguments in between.
/// Script commands carry their `RedisScript` so a pipeline can load the script and
/// replay the command when the server answers `NOSCRIPT` (after a restart or SCRIPT FLUSH).
public struct RedisCommand: Sendable {
    /// `$<length>\r\n<bytes>\r\n` for each argument; the `*<count>` header is written on send.
    private(set) var encodedArguments: [UInt8] = []
    public private(set) var argumentCount = 0
    public var script: RedisScript?

    /// An empty command with room for about `capacity` bytes; append its arguments in order.
    public init(reservingCapacity capacity: Int = 64) {
        encodedArguments.reserveCapacity(capacity)
    }

    public init(_ arguments: [RedisArgument]) {
        var capacity = 0
        for argument in arguments { capacity += argument.count + 16 }
        self.init(reservingCapacity: capacity)
        for argument in arguments { append(argument) }
    }

    public init(_ arguments: RedisArgument...) { self.init(arguments) }

    /// `EVALSHA sha numkeys keys... args...`.
    public static func script(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument] = []) -> RedisCommand {
        var command = RedisCommand.script(script, keyCount: keys.count, reservingCapacity: 64 * (keys.count + arguments.count))
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }

    /// `EVALSHA sha numkeys`, for the caller to append `keyCount` keys and then the arguments.
    public static func script(_ script: RedisScript, keyCount: Int, reservingCapacity capacity: Int = 1024) -> RedisCommand {
        var command = RedisCommand(reservingCapacity: capacity)
        command.append("EVALSHA")
        command.append(script.sha1)
        command.append(keyCount)
        command.script = script
        return command
    }

    public mutating func append(_ argument: RedisArgument) {
        argument.withBytes { append($0) }
    }

    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        appendHeader(bytes.count)
        encodedArguments.append(contentsOf: bytes)
        encodedArguments.append(0x0d)
        encodedArguments.append(0x0a)
    }

    /// A decimal integer argument, formatted in place.
    public mutating func append(_ value: Int) {
        withDecimalDigits(value) { append($0) }
    }

    private mutating func appendHeader(_ length: Int) {
        argumentCount += 1
        encodedArguments.append(0x24)  // $
        withDecimalDigits(length) { encodedArguments.append(contentsOf: $0) }
        encodedArguments.append(0x0d)
        encodedArguments.append(0x0a)
    }
}

/// Formats `value` in decimal into a stack buffer and passes its bytes to `body`.
func withDecimalDigits<Result>(_ value: Int, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var magnitude = value.magnitude
        var start = 20
        repeat {
            start -= 1
            digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        if value < 0 {
            start -= 1
            digits[start] = UInt8(ascii: "-")
        }
        return body(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(digits)[start..<20]))
    }
}
