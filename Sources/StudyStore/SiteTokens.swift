import Crypto
import GridContract
import RadGridCore
import RedisClient

/// Per-site bearer tokens. Only SHA-256 digests are stored (`rg:gateway:tokens`, digest →
/// site), so a Redis dump does not leak credentials.
public struct SiteTokens: Sendable {
    public let client: RedisClient
    public let prefix: KeyPrefix

    public init(client: RedisClient, prefix: KeyPrefix = .default) {
        self.client = client
        self.prefix = prefix
    }

    var key: String { GridKeys(prefix: prefix).siteTokens }

    /// Creates a new token for `site` and returns it; it is shown once and never stored.
    public func issue(site: String) async throws -> String {
        var generator = SystemRandomNumberGenerator()
        let token = "rgt_" + (0..<32).map { _ in hex(UInt8.random(in: 0...255, using: &generator)) }.joined()
        try await client.send("HSET", RedisArgument(key), RedisArgument(Self.digest(token)), RedisArgument(site))
        return token
    }

    /// The site a token belongs to, or nil.
    public func site(forToken token: String) async throws -> String? {
        guard token.hasPrefix("rgt_"), token.utf8.count < 200 else { return nil }
        return try await client.send("HGET", RedisArgument(key), RedisArgument(Self.digest(token))).string
    }

    /// Revokes every token of `site`; returns how many.
    @discardableResult
    public func revoke(site: String) async throws -> Int {
        let all = try await client.send("HGETALL", RedisArgument(key)).fieldMap ?? [:]
        let digests = all.filter { $0.value.string == site }.map(\.key)
        guard !digests.isEmpty else { return 0 }
        return Int(try await client.send(["HDEL", RedisArgument(key)] + digests.map { RedisArgument($0) }).int ?? 0)
    }

    /// Sites with at least one token.
    public func sites() async throws -> [String] {
        let all = try await client.send("HVALS", RedisArgument(key)).array ?? []
        return Array(Set(all.compactMap(\.string))).sorted()
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map(hex).joined()
    }
}

public func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
}
