/// A value of the flat JSON objects the contract exchanges.
enum JSONScalar: Equatable {
    case string(String)
    case number(Int)
    case strings([String])
    case other
}

/// Reads one flat JSON object (string, integer and string-array values; anything else is
/// skipped as `.other`). The contract's payloads are written by this module, so a small
/// strict reader keeps the module free of Foundation and is cheap on the task hot path.
struct JSONObjectReader {
    struct Failure: Error {
        let message: String
    }

    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func readObject() throws(Failure) -> [String: JSONScalar] {
        var fields: [String: JSONScalar] = [:]
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if peek() == UInt8(ascii: "}") { position += 1; return fields }
        while true {
            skipSpace()
            let name = try readString()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            fields[name] = try readValue()
            skipSpace()
            guard let next = next() else { throw Failure(message: "unterminated object") }
            if next == UInt8(ascii: "}") { break }
            guard next == UInt8(ascii: ",") else { throw Failure(message: "expected ',' at byte \(position - 1)") }
        }
        skipSpace()
        guard position == bytes.count else { throw Failure(message: "trailing bytes after the object") }
        return fields
    }

    mutating func readValue() throws(Failure) -> JSONScalar {
        switch peek() {
        case UInt8(ascii: "\"")?: return .string(try readString())
        case UInt8(ascii: "[")?:
            position += 1
            var items: [String] = []
            skipSpace()
            if peek() == UInt8(ascii: "]") { position += 1; return .strings(items) }
            while true {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw Failure(message: "arrays hold strings only") }
                items.append(try readString())
                skipSpace()
                guard let next = next() else { throw Failure(message: "unterminated array") }
                if next == UInt8(ascii: "]") { return .strings(items) }
                guard next == UInt8(ascii: ",") else { throw Failure(message: "expected ',' in array at byte \(position - 1)") }
            }
        case let byte? where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte):
            var negative = false
            if byte == UInt8(ascii: "-") { negative = true; position += 1 }
            var value = 0
            var digits = 0
            while let d = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) {
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(Int(d - UInt8(ascii: "0")))
                guard !o1, !o2 else { throw Failure(message: "number too large") }
                value = sum
                digits += 1
                position += 1
            }
            guard digits > 0 else { throw Failure(message: "malformed number") }
            if let d = peek(), d == UInt8(ascii: ".") || d == UInt8(ascii: "e") || d == UInt8(ascii: "E") {
                throw Failure(message: "only integers are expected")
            }
            return .number(negative ? -value : value)
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?, UInt8(ascii: "n")?:
            while let b = peek(), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) { position += 1 }
            return .other
        default:
            throw Failure(message: "unexpected value at byte \(position)")
        }
    }

    mutating func readString() throws(Failure) -> String {
        try expect(UInt8(ascii: "\""))
        let start = position
        var plain = true
        while let byte = next() {
            if byte == UInt8(ascii: "\"") {
                let raw = bytes[start..<(position - 1)]
                return plain ? String(decoding: raw, as: UTF8.self) : try unescape(raw)
            }
            if byte == UInt8(ascii: "\\") { plain = false; guard next() != nil else { break } }
        }
        throw Failure(message: "unterminated string")
    }

    func unescape(_ raw: ArraySlice<UInt8>) throws(Failure) -> String {
        var out: [UInt8] = []
        var i = raw.startIndex
        while i < raw.endIndex {
            let byte = raw[i]
            i += 1
            guard byte == UInt8(ascii: "\\") else { out.append(byte); continue }
            guard i < raw.endIndex else { throw Failure(message: "bad escape") }
            let escaped = raw[i]
            i += 1
            switch escaped {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
            default: throw Failure(message: "unsupported escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        guard next() == byte else { throw Failure(message: "expected '\(Character(UnicodeScalar(byte)))' at byte \(max(0, position - 1))") }
    }

    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func next() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func skipSpace() {
        while let b = peek(), b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { position += 1 }
    }
}
