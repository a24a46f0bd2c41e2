import Crypto
import GridContract
import RadGridCore
import RedisClient

/// A study is identified by (site, StudyInstanceUID). StudyInstanceUIDs are meant to be
/// unique, but a patient's images travel: two hospitals may each send a legitimate copy of one
/// study for their own request. The first site's copy keeps the UID as its key; any other
/// site's copy is kept under a UID derived from (site, UID) (`siteCopyUID`), so the two never
/// share a record, instances, report or audit chain, and each site names its study by the UID
/// it sent. The instances themselves keep their own StudyInstanceUID; the record keeps it as
/// `dicomStudy` where it differs from the key, for documents sent back to the site.
extension StudyStore {
    /// The key of `site`'s copy of a study whose UID another site holds: `2.25.` and the
    /// decimal of the first 16 bytes of SHA-256("radgrid-site-copy", site, uid) — a valid UID
    /// (PS3.5 B.2), the same on every gateway, and no site can guess another's from its own.
    public static func siteCopyUID(site: SiteID, study: StudyUID) -> StudyUID {
        var hash = SHA256()
        for part in ["radgrid-site-copy", site.rawValue, study.rawValue] {
            hash.update(data: Array(part.utf8) + [0])
        }
        let digest = Array(hash.finalize())
        // 128 bits as decimal, by long division of the big-endian bytes.
        var number = Array(digest.prefix(16))
        var digits: [UInt8] = []
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in number.indices {
                let value = remainder * 256 + Int(number[i])
                number[i] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(UInt8(remainder))
        }
        let decimal = digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
        // Always a well-formed UID; the initializer cannot fail on it.
        return (try? StudyUID("2.25." + decimal)) ?? study
    }

    /// The key under which `site`'s study with this UID is (or would be) kept: its own copy if
    /// one exists, else the UID itself unless another site holds it, else its own copy.
    public func resolve(site: SiteID, study: StudyUID) async throws -> StudyUID {
        let copy = Self.siteCopyUID(site: site, study: study)
        let replies = try await client.pipeline([
            RedisCommand("HGET", RedisArgument(keys.study(study).record), "site"),
            RedisCommand("EXISTS", RedisArgument(keys.study(copy).record)),
        ])
        if try replies[1].throwingServerError().int == 1 { return copy }
        guard let owner = try replies[0].throwingServerError().string, owner != site.rawValue else { return study }
        return copy
    }

    /// `site`'s study with this UID, if it has one (another site's answers nil, as a missing one).
    public func record(site: SiteID, study: StudyUID) async throws -> StudyRecord? {
        guard let record = try await record(try await resolve(site: site, study: study)), record.site == site else { return nil }
        return record
    }
}
