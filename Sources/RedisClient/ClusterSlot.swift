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

    /// Argument `index` in upper case (command and subcommand names: short strings, stored
    /// inline, no allocation).
    private func upperArgument(_ index: Int) -> String {
        withArgument(index) { bytes in bytes.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? "" }
    }

    /// Commands without keys: they may run on any node.
    private static let keyless: Set<String> = ["PING", "INFO", "SCRIPT", "TIME", "CLUSTER", "DBSIZE", "FLUSHDB", "FLUSHALL", "SCAN",
                                               "CLIENT", "ACL", "CONFIG", "WAIT", "SELECT", "AUTH", "HELLO", "ECHO", "COMMAND",
                                               "ASKING", "READONLY", "LASTSAVE", "BGSAVE", "BGREWRITEAOF", "SAVE", "ROLE", "LATENCY", "SLOWLOG"]

    /// The cluster slot this command must run on, or nil for a command without keys (it may
    /// run on any node). Covers the commands the grid sends: the key is the first argument,
    /// the first declared key of a script, the stream after `STREAMS`, or the second argument
    /// of a container command (`XGROUP CREATE key`, `XINFO STREAM key`, `MEMORY USAGE key`).
    var clusterSlot: Int? {
        let name = upperArgument(0)
        switch name {
        case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO":
            let keyCount = withArgument(2) { $0.flatMap { RedisReply.parseInteger($0) } } ?? 0
            return keyCount > 0 ? slot(ofArgument: 3) : nil
        case "XREAD", "XREADGROUP":
            for index in 1..<argumentCount where upperArgument(index) == "STREAMS" { return slot(ofArgument: index + 1) }
            return nil
        case "XGROUP", "XINFO", "MEMORY", "OBJECT":
            if ["HELP", "STATS", "DOCTOR", "MALLOC-STATS"].contains(upperArgument(1)) { return nil }
            return slot(ofArgument: 2)
        default:
            if Self.keyless.contains(name) { return nil }
            return argumentCount > 1 ? slot(ofArgument: 1) : nil
        }
    }

    private func slot(ofArgument index: Int) -> Int? {
        withArgument(index) { bytes in bytes.map { ClusterSlot.of($0) } }
    }
}
