/// Redis Cluster's key → slot function: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384.
public enum ClusterSlot {
    public static let count = 16384

    /// The slot of `key`. When the key holds `{tag}` with a non-empty tag, only the tag is
    /// hashed, so keys sharing a tag share a slot (and may meet in one script).
    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(UnsafeRawBufferPointer($0)) }
    }

    public static func of(_ key: UnsafeRawBufferPointer) -> Int {
        var hashed = key
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
           let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            hashed = UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])
        }
        var crc: UInt16 = 0
        for byte in hashed {
            crc = (crc << 8) ^ crcTable[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return Int(crc) & (count - 1)
    }

    private static let crcTable: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

extension RedisCommand {
    /// Calls `body` with the bytes of argument `index` (0 is the command name), or nil when
    /// the command has fewer arguments. Reads the RESP encoding in place.
    func withArgument<Result>(_ index: Int, _ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        encodedArguments.withUnsafeBytes { buffer in
            var position = 0
            var current = 0
            while position < buffer.count {
                // `$<length>\r\n<bytes>\r\n`
                position += 1
                var length = 0
                while position < buffer.count, buffer[position] != 0x0d {
                    length = length * 10 + Int(buffer[position] - 0x30)
                    position += 1
                }
                position += 2
                if current == index {
                    return body(UnsafeRawBufferPointer(rebasing: buffer[position..<min(buffer.count, position + length)]))
                }
                position += length + 2
                current += 1
            }
            return body(nil)
        }
    }

    private func argumentEquals(_ index: Int, _ text: StaticString) -> Bool {
        withArgument(index) { bytes in
            guard let bytes, bytes.count == text.utf8CodeUnitCount else { return false }
            for offset in 0..<bytes.count where bytes[offset] & 0xdf != text.utf8Start[offset] & 0xdf { return false }
            return true
        }
    }

    /// The cluster slot this command must run on, or nil for a command without keys (it may
    /// run on any node). Covers the commands the grid sends: the key is the first argument,
    /// the first declared key of a script, the stream after `STREAMS`, or the second argument
    /// of a container command (`XGROUP CREATE key`, `XINFO STREAM key`, `MEMORY USAGE key`).
    var clusterSlot: Int? {
        if argumentEquals(0, "EVALSHA") || argumentEquals(0, "EVAL") || argumentEquals(0, "EVALSHA_RO") || argumentEquals(0, "FCALL") {
            let keyCount = withArgument(2) { $0.flatMap { RedisReply.parseInteger($0) } } ?? 0
            return keyCount > 0 ? slot(ofArgument: 3) : nil
        }
        if argumentEquals(0, "XREAD") || argumentEquals(0, "XREADGROUP") {
            for index in 1..<argumentCount where argumentEquals(index, "STREAMS") { return slot(ofArgument: index + 1) }
            return nil
        }
        if argumentEquals(0, "XGROUP") || argumentEquals(0, "XINFO") || argumentEquals(0, "MEMORY") || argumentEquals(0, "OBJECT") {
            if argumentEquals(1, "HELP") || argumentEquals(1, "STATS") || argumentEquals(1, "DOCTOR") || argumentEquals(1, "MALLOC-STATS") { return nil }
            return slot(ofArgument: 2)
        }
        for keyless: StaticString in ["PING", "INFO", "SCRIPT", "TIME", "CLUSTER", "DBSIZE", "FLUSHDB", "FLUSHALL", "SCAN",
                                      "CLIENT", "ACL", "CONFIG", "WAIT", "SELECT", "AUTH", "HELLO", "ECHO", "COMMAND",
                                      "ASKING", "READONLY", "LASTSAVE", "BGSAVE", "BGREWRITEAOF", "SAVE", "ROLE", "LATENCY", "SLOWLOG"]
        where argumentEquals(0, keyless) {
            return nil
        }
        return argumentCount > 1 ? slot(ofArgument: 1) : nil
    }

    private func slot(ofArgument index: Int) -> Int? {
        withArgument(index) { bytes in bytes.map { ClusterSlot.of($0) } }
    }
}
