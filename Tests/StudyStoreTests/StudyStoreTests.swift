import Audit
import RadGridCore
import RedisClient
import StudyStore
import TestSupport
import Testing

@Suite("Study store: intake, commit, state machine")
struct StudyStoreTests {
    func makeStore() async throws -> (RedisClient, StudyStore) {
        let client = try RedisClient(url: try await TestRedis.url())
        return (client, StudyStore(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix())))
    }

    func header(_ study: String, _ sop: String, series: String = "1.2.3.1") -> InstanceHeader {
        InstanceHeader(studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop, modality: "CT", bodyPart: "HEAD")
    }

    @Test func resendingTheSameInstanceIsANoOp() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let first = try await store.storeInstance(site: "H1", header: header("1.2.3", "1.2.3.1.1"), priority: .routine, compressed: [1, 2, 3], rawSize: 10, sha256: "ab")
        let again = try await store.storeInstance(site: "H1", header: header("1.2.3", "1.2.3.1.1"), priority: .routine, compressed: [1, 2, 3], rawSize: 10, sha256: "ab")
        try await store.storeInstance(site: "H1", header: header("1.2.3", "1.2.3.1.2"), priority: .routine, compressed: [4, 5], rawSize: 20, sha256: "cd")
        #expect(first == .stored)
        #expect(again == .duplicate)
        let study = try #require(try await store.study("1.2.3"))
        #expect(study.instances == 2)
        #expect(study.rawBytes == 30)
        #expect(study.storedBytes == 5)
        #expect(study.site == "H1")
        #expect(study.state == .received)
        #expect(study.modality == "CT")
        #expect(try await store.instanceUIDs("1.2.3") == ["1.2.3.1.1", "1.2.3.1.2"])
        #expect(try await store.compressedInstance(study: "1.2.3", sop: "1.2.3.1.2") == [4, 5])
        let timeline = try await AuditTrail.timeline(client: client, prefix: store.prefix, study: "1.2.3")
        #expect(timeline.map(\.action) == ["study.received", "instance.stored", "instance.stored"])
    }

    @Test func anotherSitesStudyIsForbiddenAndUntouched() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        try await store.storeInstance(site: "H1", header: header("7.7", "7.7.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        let error = await #expect(throws: StudyStoreError.self) {
            try await store.storeInstance(site: "H2", header: header("7.7", "7.7.2"), priority: .routine, compressed: [2], rawSize: 1, sha256: "y")
        }
        #expect(error?.code == "study.forbidden")
        #expect(try await store.instanceUIDs("7.7") == ["7.7.1"])
        #expect(try await store.compressedInstance(study: "7.7", sop: "7.7.2") == nil)
        await #expect(throws: StudyStoreError.self) { try await store.commit(study: "7.7", actor: AuditActor(.site, "H2"), reason: "explicit", site: "H2") }
    }

    @Test func commitIsOnceAndLateInstancesAreRecorded() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        try await store.storeInstance(site: "H1", header: header("5.5", "5.5.1"), priority: .urgent, compressed: [1], rawSize: 1, sha256: "x")
        #expect(try await store.openStudies(lastInstanceBefore: WallClock.nowMilliseconds() + 1000) == ["5.5"])
        #expect(try await store.commit(study: "5.5", actor: AuditActor(.site, "H1"), reason: "explicit", site: "H1") == .committed(instances: 1))
        #expect(try await store.commit(study: "5.5", actor: AuditActor(.coordinator, "c1"), reason: "stable") == .alreadyCommitted(instances: 1))
        #expect(try await store.openStudies(lastInstanceBefore: WallClock.nowMilliseconds() + 1000).isEmpty)
        let late = try await store.storeInstance(site: "H1", header: header("5.5", "5.5.2"), priority: .urgent, compressed: [2], rawSize: 1, sha256: "y")
        #expect(late == .late)
        let study = try #require(try await store.study("5.5"))
        #expect(study.lateInstances == 1)
        #expect(study.instances == 2)
        #expect(study.priority == .urgent)
        // The coordinator sees the commit and the late instance on its stream.
        let entries = try await client.send("XRANGE", RedisArgument(store.committedStreamKey), "-", "+").array ?? []
        #expect(entries.count == 2)
        await #expect(throws: StudyStoreError.self) { try await store.commit(study: "9.9.9", actor: AuditActor(.site, "H1"), reason: "explicit") }
    }

    @Test func stateMachineAllowsOnlyLegalTransitionsAndAuditsThem() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        try await store.storeInstance(site: "H1", header: header("3.3", "3.3.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        let coordinator = AuditActor(.coordinator, "c1")
        #expect(try await store.transition(study: "3.3", to: .queued, actor: coordinator, action: "study.queued") == .received)
        let error = await #expect(throws: StudyStoreError.self) {
            try await store.transition(study: "3.3", to: .reported, actor: coordinator, action: "study.reported")
        }
        #expect(error?.code == "study.invalidTransition")
        try await store.transition(study: "3.3", to: .processing, actor: AuditActor(.worker, "w1"), action: "study.processing")
        try await store.transition(study: "3.3", to: .screened, actor: AuditActor(.worker, "w1"), action: "study.screened", details: "urgency=critical", fields: ["urgency": "critical"])
        let study = try #require(try await store.study("3.3"))
        #expect(study.state == .screened)
        #expect(study.attributes["urgency"] == "critical")
        #expect(try await store.countsByState()[.screened] == 1)
        #expect(try await store.countsByState()[.received] == 0)
        await #expect(throws: StudyStoreError.self) {
            try await store.transition(study: "3.3", to: .routing, actor: coordinator, action: "x", fields: ["state": "reported"])
        }
        let actions = try await AuditTrail.timeline(client: client, prefix: store.prefix, study: "3.3").map(\.action)
        #expect(actions == ["study.received", "instance.stored", "study.queued", "study.processing", "study.screened"])
        #expect(try await AuditTrail.verify(client: client, prefix: store.prefix).isIntact)
    }

    @Test func invalidIdentifiersAreRejectedBeforeAnyWrite() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        for bad in [header("1.2.abc", "1.1"), header("1.2", ""), header(String(repeating: "1", count: 65), "1.1")] {
            await #expect(throws: StudyStoreError.self) {
                try await store.storeInstance(site: "H1", header: bad, priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
            }
        }
        await #expect(throws: StudyStoreError.self) {
            try await store.storeInstance(site: "bad site!", header: header("1.2", "1.2.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        }
        let keys = try await client.send("KEYS", RedisArgument(store.prefix.value + "*")).array ?? []
        #expect(keys.isEmpty)
    }
}
