import GridContract
import RadGridCore
import RedisClient
import StudyStore
import Synchronization

/// Decides whether the gateway should refuse new uploads for a while (429 + Retry-After):
/// when Redis memory passes a fraction of its limit, or too many studies wait for work.
/// Sampled at most once a second so uploads do not pay for it.
public final class Backpressure: Sendable {
    public struct Thresholds: Sendable {
        /// Fraction of `maxmemory` (or of `memoryLimitBytes` when Redis has none) above which uploads wait.
        public var memoryFraction: Double = 0.85
        /// Used when Redis runs without `maxmemory`.
        public var memoryLimitBytes: Int64 = 8 << 30
        /// Studies received or queued but not yet processing.
        public var maxWaitingStudies: Int = 10_000
        public var retryAfterSeconds: Int = 5
        public init() {}
    }

    private struct Sample { var takenAt: UInt64; var reason: String? }

    let client: RedisClient
    let store: StudyStore
    public let thresholds: Thresholds
    private let last = Mutex<Sample?>(nil)

    public init(client: RedisClient, store: StudyStore, thresholds: Thresholds = Thresholds()) {
        self.client = client
        self.store = store
        self.thresholds = thresholds
    }

    /// nil when uploads may proceed, else the reason to refuse.
    public func refusal() async throws -> String? {
        let now = WallClock.monotonicNanoseconds()
        if let sample = last.withLock({ $0 }), now - sample.takenAt < 1_000_000_000 { return sample.reason }
        let reason = try await measure()
        last.withLock { $0 = Sample(takenAt: now, reason: reason) }
        return reason
    }

    private func measure() async throws -> String? {
        let info = try await client.send("INFO", "memory").string ?? ""
        var used: Int64 = 0
        var limit: Int64 = 0
        for line in info.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("used_memory:") { used = Int64(line.dropFirst("used_memory:".count)) ?? 0 }
            if line.hasPrefix("maxmemory:") { limit = Int64(line.dropFirst("maxmemory:".count)) ?? 0 }
        }
        if limit == 0 { limit = thresholds.memoryLimitBytes }
        if Double(used) > Double(limit) * thresholds.memoryFraction {
            return "Redis memory is above \(Int(thresholds.memoryFraction * 100))% of its limit"
        }
        let counts = try await store.countsByState()
        let waiting = (counts[.received] ?? 0) + (counts[.queued] ?? 0)
        if waiting > thresholds.maxWaitingStudies {
            return "\(waiting) studies are waiting for processing"
        }
        return nil
    }
}

/// Uploads in progress, all sites together and per site: a bound on what the gateway holds
/// at once (each upload about one instance and one store slice), so a burst of large uploads
/// is answered 429 instead of exhausting memory.
public final class UploadSlots: Sendable {
    private struct Counts { var total = 0; var perSite: [SiteID: Int] = [:] }
    private let counts = Mutex(Counts())
    public let total: Int
    public let perSite: Int

    public init(total: Int, perSite: Int) {
        self.total = max(1, total)
        self.perSite = max(1, perSite)
    }

    /// Takes a slot for `site`; false when the gateway or the site is at its bound.
    public func acquire(_ site: SiteID) -> Bool {
        counts.withLock { counts in
            guard counts.total < total, counts.perSite[site, default: 0] < perSite else { return false }
            counts.total += 1
            counts.perSite[site, default: 0] += 1
            return true
        }
    }

    public func release(_ site: SiteID) {
        counts.withLock { counts in
            counts.total -= 1
            counts.perSite[site, default: 1] -= 1
            if counts.perSite[site] == 0 { counts.perSite[site] = nil }
        }
    }

    public var inUse: Int { counts.withLock { $0.total } }
}
