import DICOMWeb
import Foundation
import GridContract
import RadGridCore
import RedisClient
import Synchronization

/// What a sending site may do at the gateway: which priorities it may request, and how many
/// uploads per minute it may start. Kept in the hash `sites:policy` (field = site code, or `*`
/// for every site without its own), set with `radgridctl sites policy`. A site with neither
/// has no limits (as before policies existed).
public struct SitePolicy: Sendable, Codable, Equatable {
    /// Priorities the site may request; others are refused (403), never silently lowered.
    public var priorities: [Priority]
    /// STOW-RS requests the site may start per minute (0: unlimited); beyond, 429 with
    /// `Retry-After` until the next minute.
    public var uploadsPerMinute: Int

    enum CodingKeys: String, CodingKey { case priorities, uploadsPerMinute = "uploads_per_minute" }

    public static let unrestricted = SitePolicy(priorities: Priority.allCases, uploadsPerMinute: 0)

    public init(priorities: [Priority], uploadsPerMinute: Int) {
        self.priorities = priorities
        self.uploadsPerMinute = uploadsPerMinute
    }
}

/// Reads site policies (cached for a few seconds) and counts uploads per site and minute.
public final class SitePolicies: Sendable {
    let client: RedisClient
    let keys: GridKeys
    private let cache = Mutex<[String: (policy: SitePolicy, readAt: UInt64)]>([:])

    public init(client: RedisClient, prefix: KeyPrefix) {
        self.client = client
        keys = GridKeys(prefix: prefix)
    }

    public func set(_ policy: SitePolicy?, site: String) async throws {
        if let policy {
            let data = try JSONEncoder().encode(policy)
            _ = try await client.send("HSET", RedisArgument(keys.sitePolicies), RedisArgument(site), RedisArgument(String(decoding: data, as: UTF8.self)))
        } else {
            _ = try await client.send("HDEL", RedisArgument(keys.sitePolicies), RedisArgument(site))
        }
    }

    /// The site's own policy, else the `*` policy, else unrestricted.
    public func policy(for site: SiteID) async throws -> SitePolicy {
        let now = WallClock.monotonicNanoseconds()
        if let cached = cache.withLock({ $0[site.rawValue] }), now - cached.readAt < 5_000_000_000 { return cached.policy }
        let values = try await client.send("HMGET", RedisArgument(keys.sitePolicies), RedisArgument(site.rawValue), "*").array ?? []
        let text = values.compactMap(\.string).first
        let policy = try text.map { try JSONDecoder().decode(SitePolicy.self, from: Data($0.utf8)) } ?? .unrestricted
        cache.withLock { $0[site.rawValue] = (policy, now) }
        return policy
    }

    /// Every policy set, by site (`*` included).
    public func all() async throws -> [String: SitePolicy] {
        let reply = try await client.send("HGETALL", RedisArgument(keys.sitePolicies))
        var policies: [String: SitePolicy] = [:]
        for (site, value) in reply.fieldMap ?? [:] {
            if let text = value.string, let policy = try? JSONDecoder().decode(SitePolicy.self, from: Data(text.utf8)) { policies[site] = policy }
        }
        return policies
    }

    /// Counts one upload; throws 429 (with the seconds to the next minute) past the limit.
    public func admitUpload(site: SiteID, policy: SitePolicy) async throws {
        guard policy.uploadsPerMinute > 0 else { return }
        let nowSeconds = WallClock.nowMilliseconds() / 1000
        let minute = nowSeconds / 60
        let key = keys.siteUploadCount(site, minute: minute)
        let replies = try await client.pipeline([
            RedisCommand("INCR", RedisArgument(key)),
            RedisCommand("EXPIRE", RedisArgument(key), "120"),
        ])
        let count = try replies[0].throwingServerError().int ?? 0
        if count > Int64(policy.uploadsPerMinute) {
            throw GatewayError.rateLimited("site \(site) may start \(policy.uploadsPerMinute) uploads a minute", retryAfter: Int(60 - nowSeconds % 60))
        }
    }
}
