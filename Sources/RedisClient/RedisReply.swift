import CHiredis
#if canImport(Glibc)
import Glibc
#endif

/// A reply as hiredis parsed it, read in place: no copy is made until a value is asked for.
///
/// Only valid inside the decoding closure of `RedisClient.pipeline(_:decode:)`, which runs on
/// the connection's thread before the reply is freed; never store it. Hot paths (a claim reads
/// thousands of stream entries a second) decode their replies with it straight into their own
/// types, without the `RedisValue` tree of arrays and byte buffers in between.
public struct RedisReply {
    public enum Kind: Sendable, Equatable {
        case null, status, error, integer, bulk, array
    }

    private let reply: UnsafeMutablePointer<redisReply>

    init(_ reply: UnsafeMutablePointer<redisReply>) { self.reply = reply }

    public var kind: Kind {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING: .bulk
        case REDIS_REPLY_STATUS: .status
        case REDIS_REPLY_ERROR: .error
        case REDIS_REPLY_INTEGER: .integer
        case REDIS_REPLY_ARRAY: .array
        default: .null
        }
    }

    /// Elements of an array reply (0 for any other kind).
    public var count: Int { reply.pointee.type == REDIS_REPLY_ARRAY ? reply.pointee.elements : 0 }

    /// Element `index` of an array reply; nil when out of range or not an array.
    public subscript(index: Int) -> RedisReply? {
        guard index >= 0, index < count, let element = reply.pointee.element[index] else { return nil }
        return RedisReply(element)
    }

    /// The bytes of a bulk, status or error reply (empty for other kinds), without copying.
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_ERROR:
            guard let text = reply.pointee.str, reply.pointee.len > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
            return try body(UnsafeRawBufferPointer(start: text, count: reply.pointee.len))
        default:
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// A bulk or status reply as text.
    public var string: String? {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: withBytes { String(decoding: $0, as: UTF8.self) }
        default: nil
        }
    }

    /// A bulk reply's bytes (a status reply's too).
    public var bytes: [UInt8]? {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: withBytes { Array($0) }
        default: nil
        }
    }

    /// An integer reply, or a bulk/status reply holding a decimal integer (read in place).
    public var int: Int64? {
        switch reply.pointee.type {
        case REDIS_REPLY_INTEGER: Int64(reply.pointee.integer)
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: withBytes { Self.parseInteger($0) }
        default: nil
        }
    }

    /// The text of an error reply.
    public var errorMessage: String? {
        reply.pointee.type == REDIS_REPLY_ERROR ? withBytes { String(decoding: $0, as: UTF8.self) } : nil
    }

    /// True when this bulk or status reply is exactly `text` (compared in place).
    public func equals(_ text: StaticString) -> Bool {
        withBytes { bytes in
            bytes.count == text.utf8CodeUnitCount
                && (bytes.isEmpty || memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0)
        }
    }

    /// The whole reply as a `RedisValue` (copies everything).
    public var value: RedisValue {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING: .bulk(withBytes { Array($0) })
        case REDIS_REPLY_STATUS: .status(withBytes { String(decoding: $0, as: UTF8.self) })
        case REDIS_REPLY_ERROR: .error(withBytes { String(decoding: $0, as: UTF8.self) })
        case REDIS_REPLY_INTEGER: .integer(Int64(reply.pointee.integer))
        case REDIS_REPLY_ARRAY:
            .array((0..<reply.pointee.elements).map { index in
                reply.pointee.element[index].map { RedisReply($0).value } ?? .null
            })
        default: .null
        }
    }

    /// A decimal integer with an optional leading '-', or nil (no allocation).
    public static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < bytes.count, bytes.count - index <= 18 else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int64(digit)
            index += 1
        }
        return negative ? -value : value
    }
}
