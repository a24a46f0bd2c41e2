import BlobSealing
import GridContract
import RadGridCore
import RedisClient
import StudyStore
import TestSupport
import Testing

@Suite("Study store: instances sealed at rest")
struct SealedBlobTests {
    let h1 = try! SiteID("H1")
    let plaintext: [UInt8] = Array("zstd bytes holding DOE^JANE and PID-4711".utf8)

    func keyring() throws -> BlobKeyring {
        try BlobKeyring(current: "k1", keys: ["k1": [UInt8](repeating: 0x5A, count: 32)])
    }

    func header(_ study: String, _ sop: String) throws -> InstanceHeader {
        InstanceHeader(study: try StudyUID(study), series: try SeriesUID(study + ".1"), sop: try SOPInstanceUID(sop), modality: "CT", bodyPart: "HEAD")
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    @Test func aStoreWithKeysSealsAtIntakeAndOpensOnRead() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix()), keyring: try keyring())
        let study = try StudyUID("5.1")
        let sop = try SOPInstanceUID("5.1.1")
        try await store.storeInstance(site: h1, header: try header("5.1", "5.1.1"), priority: .routine, compressed: plaintext, rawSize: 100, sha256: "ab")

        let raw = try #require(try await client.send("GET", RedisArgument(store.keys.study(study).blob(sop))).bytes)
        #expect(Array(raw.prefix(4)) == Array("RGB1".utf8))
        #expect(!contains(raw, Array("DOE^JANE".utf8)) && !contains(raw, Array("PID-4711".utf8)))
        // The record counts what is stored: the sealed size.
        #expect(try await store.record(study)?.storedBytes == Int64(raw.count))

        #expect(try await store.compressedInstance(study: study, sop: sop) == plaintext)
        let work = try await store.instanceWork(study: study, sop: sop)
        #expect(work.compressed == plaintext)
        #expect(work.state == .received)

        // Resending the instance is still a no-op (the first sealed bytes stay).
        #expect(try await store.storeInstance(site: h1, header: try header("5.1", "5.1.1"), priority: .routine, compressed: plaintext, rawSize: 100, sha256: "ab") == .duplicate)
        #expect(try await client.send("GET", RedisArgument(store.keys.study(study).blob(sop))).bytes == raw)

        // A blob copied under another instance of the same study does not open there.
        let other = try SOPInstanceUID("5.1.2")
        try await client.send("SET", RedisArgument(store.keys.study(study).blob(other)), RedisArgument(raw))
        let moved = await #expect(throws: BlobSealingError.self) { try await store.compressedInstance(study: study, sop: other) }
        #expect(moved?.code == "blob.authentication")
        // Nor when the study's record names another site.
        try await client.send("HSET", RedisArgument(store.keys.study(study).record), "site", "H2")
        let resited = await #expect(throws: BlobSealingError.self) { try await store.compressedInstance(study: study, sop: sop) }
        #expect(resited?.code == "blob.authentication")
    }

    @Test func aStoreWithoutKeysCannotReadASealedBlob() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let sealing = StudyStore(client: client, prefix: prefix, keyring: try keyring())
        let plain = StudyStore(client: client, prefix: prefix)
        try await sealing.storeInstance(site: h1, header: try header("5.2", "5.2.1"), priority: .routine, compressed: plaintext, rawSize: 100, sha256: "ab")
        let study = try StudyUID("5.2")
        let sop = try SOPInstanceUID("5.2.1")
        let read = await #expect(throws: BlobSealingError.self) { try await plain.compressedInstance(study: study, sop: sop) }
        #expect(read?.code == "blob.noKeys")
        let work = await #expect(throws: BlobSealingError.self) { try await plain.instanceWork(study: study, sop: sop) }
        #expect(work?.code == "blob.noKeys")
        // Keys that lack the blob's id: unknown key, not a wrong answer.
        let rotated = StudyStore(client: client, prefix: prefix, keyring: try BlobKeyring(current: "k2", keys: ["k2": [UInt8](repeating: 1, count: 32)]))
        let unknown = await #expect(throws: BlobSealingError.self) { try await rotated.compressedInstance(study: study, sop: sop) }
        #expect(unknown?.code == "blob.unknownKey")
    }

    @Test func anAlteredSealedBlobFailsItsInstanceAloneInsteadOfRetrying() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let store = StudyStore(client: client, prefix: prefix, keyring: try keyring())
        try await store.storeInstance(site: h1, header: try header("5.4", "5.4.1"), priority: .routine, compressed: plaintext, rawSize: 100, sha256: "ab")
        let study = try StudyUID("5.4")
        let sop = try SOPInstanceUID("5.4.1")
        let key = RedisArgument(store.keys.study(study).blob(sop))
        var stored = try #require(try await client.send("GET", key).bytes)
        stored[stored.count - 20] ^= 0x01
        try await client.send("SET", key, RedisArgument(stored))
        let work = try await store.instanceWork(study: study, sop: sop)
        #expect(work.compressed == nil && work.damaged == "blob.authentication" && work.state == .received)
    }

    @Test func blobsStoredBeforeSealingStillRead() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        let legacy = StudyStore(client: client, prefix: prefix)
        try await legacy.storeInstance(site: h1, header: try header("5.3", "5.3.1"), priority: .routine, compressed: plaintext, rawSize: 100, sha256: "ab")
        let study = try StudyUID("5.3")
        let sop = try SOPInstanceUID("5.3.1")
        #expect(try await client.send("GET", RedisArgument(legacy.keys.study(study).blob(sop))).bytes == plaintext)
        let sealing = StudyStore(client: client, prefix: prefix, keyring: try keyring())
        #expect(try await sealing.compressedInstance(study: study, sop: sop) == plaintext)
        #expect(try await sealing.instanceWork(study: study, sop: sop).compressed == plaintext)
        #expect(try await legacy.compressedInstance(study: study, sop: sop) == plaintext)
        // A later instance of the same study is sealed; both read back.
        try await sealing.storeInstance(site: h1, header: try header("5.3", "5.3.2"), priority: .routine, compressed: plaintext + [1], rawSize: 100, sha256: "cd")
        #expect(try await sealing.compressedInstance(study: study, sop: try SOPInstanceUID("5.3.2")) == plaintext + [1])
        #expect(try await sealing.compressedInstance(study: study, sop: try SOPInstanceUID("5.3.9")) == nil)
    }
}
