import Crypto

/// A Lua script, identified by its SHA-1 so it is sent in full only once per server.
///
/// Invoke it with `RedisClient.evalScript` or `RedisCommand.script`: both use EVALSHA and
/// transparently `SCRIPT LOAD` + retry when the server answers NOSCRIPT.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
