import DICOMWeb
import Foundation
import GridContract
import RadGridCore
import RedisClient
import Synchronization

/// What a sending site may do at the gateway: which priorities it may request, how many
/// uploads per minute it may start, how many studies it may have open, and whether each upload
/// must carry a consent reference. Kept in the hash `sites:policy` (field = site code, or `*`
/// for every site without its own), set with `radgridctl sites policy`. A site with neither
/// has no limits (as before policies existed).
public struct SitePolicy: Sendable, Codable, Equatable {
    /// Priorities the site may request; others are refused (403), never silently lowered.
    public var priorities: [Priority]
    /// STOW-RS requests the site may start per minute (0: unlimited); beyond, 429 with
    /// `Retry-After` until the next minute.
    public var uploadsPerMinute: Int
    /// Studies the site may have open (received, not yet ended) at once (0: unlimited); an
    /// upload that would open one more is answered 429 with `Retry-After`. Uploads into a
    /// study the site already has open (its UID in the URL) are always taken.
    public var openStudies: Int
    /// Every upload must carry a consent reference (`X-Consent-Reference`), else 403.
    public var requireConsent: Bool
    /// The site's share of the stat lane: stat studies it may have open at once (0: unlimited).
    /// One more is answered 429 (never silently lowered), so one site's flood of stat work
    /// cannot fill the lane every site's emergencies share.
    public var statOpenStudies: Int

    enum CodingKeys: String, CodingKey {
        case priorities, uploadsPerMinute = "uploads_per_minute", openStudies = "open_studies", requireConsent = "require_consent"
        case statOpenStudies = "stat_open_studies"
    }

    public static let unrestricted = SitePolicy(priorities: Priority.allCases, uploadsPerMinute: 0)

    public init(priorities: [Priority], uploadsPerMinute: Int, openStudies: Int = 0, requireConsent: Bool = false, statOpenStudies: Int = 0) {
        self.priorities = priorities
        self.uploadsPerMinute = uploadsPerMinute
        self.openStudies = openStudies
        self.requireConsent = requireConsent
        self.statOpenStudies = statOpenStudies
    }

    // Policies stored before a field existed read as without it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        priorities = try container.decodeIfPresent([Priority].self, forKey: .priorities) ?? Priority.allCases
        uploadsPerMinute = try container.decodeIfPresent(Int.self, forKey: .uploadsPerMinute) ?? 0
        openStudies = try container.decodeIfPresent(Int.self, forKey: .openStudies) ?? 0
        requireConsent = try container.decodeIfPresent(Bool.self, forKey: .requireConsent) ?? false
        statOpenStudies = try container.decodeIfPresent(Int.self, forKey: .statOpenStudies) ?? 0
    }

    /// A consent reference as a site may send it: 1–128 printable ASCII characters.
    public static func validConsentReference(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 128 && text.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
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

    /// Refuses (429) an upload that would open one more study than the site's quota, or one
    /// more stat study than its stat share; an upload into a study the site already has open
    /// (its UID in the URL) is taken.
    public func admitOpenStudies(site: SiteID, policy: SitePolicy, priority: Priority, into study: StudyUID?) async throws {
        let checksStat = priority == .stat && policy.statOpenStudies > 0
        guard policy.openStudies > 0 || checksStat else { return }
        let key = keys.siteOpenStudies(site)
        var commands = [RedisCommand("HLEN", RedisArgument(key)), RedisCommand("HEXISTS", RedisArgument(key), RedisArgument(study?.rawValue ?? ""))]
        if checksStat { commands.append(RedisCommand("HVALS", RedisArgument(key))) }
        let replies = try await client.pipeline(commands)
        let open = try replies[0].throwingServerError().int ?? 0
        if try replies[1].throwingServerError().int == 1 { return }
        if policy.openStudies > 0, open >= Int64(policy.openStudies) {
            throw GatewayError.rateLimited("site \(site) has \(open) studies open, its quota is \(policy.openStudies)", retryAfter: 60)
        }
        if checksStat {
            let stat = (try replies[2].throwingServerError().array ?? []).filter { $0.string == Priority.stat.rawValue }.count
            if stat >= policy.statOpenStudies {
                throw GatewayError.rateLimited("site \(site) has \(stat) stat studies open, its stat share is \(policy.statOpenStudies); send as urgent or retry later", retryAfter: 60)
            }
        }
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
