/// A reply from Redis, copied out of hiredis's reply object (which is freed at once).
///
/// Error replies inside a pipeline or a transaction are values (`.error`), so one failed
/// command does not hide the replies of the others; single commands throw them instead.
public enum RedisValue: Sendable, Hashable {
    case null
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case array([RedisValue])

    /// Bulk or status reply as UTF-8 text (integers are formatted).
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// Integer reply, or a bulk string that parses as one (Lua numbers, HGET of a counter).
    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk(let bytes): return Int64(String(decoding: bytes, as: UTF8.self))
        case .status(let text): return Int64(text)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .bulk, .status: return string.flatMap(Double.init)
        default: return nil
        }
    }

    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .status(let text): return Array(text.utf8)
        default: return nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The error text when this is an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// Throws the error reply as a `RedisError` with code `redis.server`.
    @discardableResult
    public func throwingServerError() throws(RedisError) -> RedisValue {
        if case .error(let message) = self { throw RedisError.server(message) }
        return self
    }

    /// A flat `[field, value, field, value]` array (HGETALL, XRANGE fields) as a dictionary.
    public var fieldMap: [String: RedisValue]? {
        guard let values = array, values.count % 2 == 0 else { return nil }
        var result: [String: RedisValue] = [:]
        result.reserveCapacity(values.count / 2)
        var index = 0
        while index < values.count {
            if let key = values[index].string { result[key] = values[index + 1] }
            index += 2
        }
        return result
    }
}

extension RedisValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .null: return "(nil)"
        case .status(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .bulk(let bytes): return "\"\(String(decoding: bytes.prefix(256), as: UTF8.self))\""
        case .array(let values): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
