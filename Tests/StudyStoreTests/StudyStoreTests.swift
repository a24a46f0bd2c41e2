import Audit
import GridContract
import RadGridCore
import RedisClient
import StudyLifecycle
import StudyStore
import TestSupport
import Synchronization
import Testing

@Suite("Study store: intake, decisions stored by version, retention, the due index")
struct StudyStoreTests {
    func makeStore() async throws -> (RedisClient, StudyStore) {
        let client = try RedisClient(url: try await TestRedis.url())
        return (client, StudyStore(client: client, prefix: KeyPrefix(TestRedis.uniquePrefix())))
    }

    func header(_ study: String, _ sop: String, series: String = "1.2.3.1") throws -> InstanceHeader {
        InstanceHeader(study: try StudyUID(study), series: try SeriesUID(series), sop: try SOPInstanceUID(sop), modality: "CT", bodyPart: "HEAD")
    }

    let h1 = try! SiteID("H1")
    let machine = StudyStateMachine()
    let site = AuditActor(.site, "H1")
    let coordinator = AuditActor(.coordinator, "c1")

    @Test func resendingTheSameInstanceIsANoOp() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let first = try await store.storeInstance(site: h1, header: try header("1.2.3", "1.2.3.1.1"), priority: .routine, compressed: [1, 2, 3], rawSize: 10, sha256: "ab")
        let again = try await store.storeInstance(site: h1, header: try header("1.2.3", "1.2.3.1.1"), priority: .routine, compressed: [1, 2, 3], rawSize: 10, sha256: "ab")
        try await store.storeInstance(site: h1, header: try header("1.2.3", "1.2.3.1.2"), priority: .routine, compressed: [4, 5], rawSize: 20, sha256: "cd")
        #expect(first == .stored)
        #expect(again == .duplicate)
        let study = try #require(try await store.record(try StudyUID("1.2.3")))
        #expect(study.instances == 2)
        #expect(study.rawBytes == 30)
        #expect(study.storedBytes == 5)
        #expect(study.site == h1)
        #expect(study.state == .received)
        #expect(study.version == 1)
        #expect(study.modality == "CT")
        #expect(try await store.instanceUIDs(try StudyUID("1.2.3")).map(\.rawValue) == ["1.2.3.1.1", "1.2.3.1.2"])
        #expect(try await store.compressedInstance(study: try StudyUID("1.2.3"), sop: try SOPInstanceUID("1.2.3.1.2")) == [4, 5])
        let timeline = try await AuditTrail.timeline(client: client, prefix: store.prefix, study: "1.2.3")
        #expect(timeline.map(\.action) == ["study.received", "instance.stored", "instance.stored"])
        // A new study is due for the sweeper (stable age) from its first instance.
        #expect(try await client.send("ZSCORE", RedisArgument(store.keys.dueStudies), "1.2.3").string != nil)
        #expect(try await store.countsByState()[.received] == 1)
    }

    /// Intake hashes its audit entries itself (a SHA-256 in Lua cost ~0.6 ms per instance).
    /// Two gateways storing into one study each see the chain move under them: the script
    /// refuses the stale entry, the store learns the head and redoes it, and the chain verifies.
    @Test func twoStoresInterleavingOnOneStudyKeepTheChainIntact() async throws {
        let (client, first) = try await makeStore()
        defer { client.shutdown() }
        let second = StudyStore(client: client, prefix: first.prefix)
        for n in 1...6 {
            let store = n % 2 == 0 ? second : first
            #expect(try await store.storeInstance(site: h1, header: try header("2.2", "2.2.1.\(n)"), priority: .routine, compressed: [UInt8(n)], rawSize: 1, sha256: "x") == .stored)
        }
        try await first.handle(.commit(reason: "explicit"), study: try StudyUID("2.2"), actor: site, machine: machine)
        // The second store still believes the study open: its late instance is redone as late.
        #expect(try await second.storeInstance(site: h1, header: try header("2.2", "2.2.1.9"), priority: .routine, compressed: [9], rawSize: 1, sha256: "x") == .late)
        let actions = try await AuditTrail.timeline(client: client, prefix: first.prefix, study: "2.2").map(\.action)
        #expect(actions == ["study.received"] + Array(repeating: "instance.stored", count: 6) + ["study.committed", "instance.late"])
        #expect(try await AuditTrail.verify(client: client, prefix: first.prefix).isIntact)
    }

    /// An upload is stored in one round trip, each script hashed on the chain the batch
    /// predicts. A duplicate in the middle breaks that prediction for the rest of its study:
    /// those are redone one by one; another study in the same batch and another site's study
    /// each get their own outcome; every chain verifies.
    @Test func aBatchWithADuplicateAnotherStudyAndAForeignStudyGetsEachRight() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        try await store.storeInstance(site: try SiteID("H2"), header: try header("9.9", "9.9.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        try await store.storeInstance(site: h1, header: try header("3.4", "3.4.2"), priority: .routine, compressed: [2], rawSize: 1, sha256: "x")
        func item(_ study: String, _ sop: String) throws -> StudyStore.IncomingInstance {
            StudyStore.IncomingInstance(header: try header(study, sop), compressed: [7, 7], rawSize: 2, sha256: "y")
        }
        let batch = [try item("3.4", "3.4.1"), try item("3.4", "3.4.2"), try item("5.6", "5.6.1"), try item("3.4", "3.4.3"),
                     try item("9.9", "9.9.2"), try item("3.4", "3.4.1"), try item("5.6", "5.6.2")]
        let results = try await store.storeInstances(site: h1, priority: .routine, batch)
        let outcomes = results.map { result -> String in
            switch result {
            case .success(let outcome): outcome.rawValue
            case .failure(let error as StudyStoreError): error.code
            case .failure(let error): "\(error)"
            }
        }
        #expect(outcomes == ["stored", "duplicate", "stored", "stored", "stored", "duplicate", "stored"])
        #expect(try await store.record(try StudyUID("3.4"))?.instances == 3)
        #expect(try await store.record(try StudyUID("5.6"))?.instances == 2)
        // H2's study keeps its one instance; H1's instance of that UID went to H1's own copy.
        #expect(try await store.record(try StudyUID("9.9"))?.instances == 1)
        #expect(try await store.record(site: h1, study: try StudyUID("9.9"))?.instances == 1)
        let actions = try await AuditTrail.timeline(client: client, prefix: store.prefix, study: "3.4").map(\.action)
        #expect(actions == ["study.received"] + Array(repeating: "instance.stored", count: 3))
        #expect(try await store.countsByState()[.received] == 4)
        #expect(try await AuditTrail.verify(client: client, prefix: store.prefix).isIntact)
    }

    /// A study is (site, UID): another site's copy of a UID is its own study, under a key
    /// derived from both, and never touches the first site's.
    @Test func anotherSitesCopyOfAUIDIsItsOwnStudy() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let h2 = try SiteID("H2")
        try await store.storeInstance(site: h1, header: try header("7.7", "7.7.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        #expect(try await store.storeInstance(site: h2, header: try header("7.7", "7.7.2"), priority: .urgent, compressed: [2], rawSize: 1, sha256: "y") == .stored)
        #expect(try await store.instanceUIDs(try StudyUID("7.7")).map(\.rawValue) == ["7.7.1"])
        #expect(try await store.compressedInstance(study: try StudyUID("7.7"), sop: try SOPInstanceUID("7.7.2")) == nil)
        let copyKey = StudyStore.siteCopyUID(site: h2, study: try StudyUID("7.7"))
        #expect(copyKey.rawValue.hasPrefix("2.25.") && copyKey.rawValue.count <= 64)
        #expect(copyKey != StudyStore.siteCopyUID(site: try SiteID("H3"), study: try StudyUID("7.7")))
        #expect(try await store.resolve(site: h2, study: try StudyUID("7.7")) == copyKey)
        #expect(try await store.resolve(site: h1, study: try StudyUID("7.7")).rawValue == "7.7")
        let copy = try #require(try await store.record(site: h2, study: try StudyUID("7.7")))
        #expect(copy.uid == copyKey && copy.site == h2 && copy.dicomStudyUID?.rawValue == "7.7" && copy.priority == .urgent)
        #expect(try await store.instanceUIDs(copyKey).map(\.rawValue) == ["7.7.2"])
        #expect(try await store.compressedInstance(study: copyKey, sop: try SOPInstanceUID("7.7.2")) == [2])
        // Each site's record under the UID is its own; the first site's keeps its UID as key.
        #expect(try await store.record(site: h1, study: try StudyUID("7.7"))?.uid.rawValue == "7.7")
        #expect(try await store.record(site: h1, study: try StudyUID("7.7"))?.dicomStudyUID == nil)
        // Two chains, each intact.
        #expect(try await AuditTrail.timeline(client: client, prefix: store.prefix, study: copyKey.rawValue).map(\.action) == ["study.received", "instance.stored"])
        #expect(try await AuditTrail.verify(client: client, prefix: store.prefix).isIntact)
    }

    @Test func commitIsOneStepAnnouncedOnceAndLateInstancesAreRecorded() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let uid = try StudyUID("5.5")
        try await store.storeInstance(site: h1, header: try header("5.5", "5.5.1"), priority: .urgent, compressed: [1], rawSize: 1, sha256: "x")
        guard case .handled(let first, let committed) = try await store.handle(.commit(reason: "explicit"), study: uid, actor: site, machine: machine) else {
            Issue.record("study unknown"); return
        }
        #expect(first.next != nil && committed.committed && committed.version == 2)
        // A second commit (another coordinator's stable age) changes nothing and announces nothing.
        guard case .handled(let second, _) = try await store.handle(.commit(reason: "stable-age"), study: uid, actor: coordinator, machine: machine) else {
            Issue.record("study unknown"); return
        }
        #expect(second.next == nil && second.ignored != nil)
        #expect(try await store.record(uid)?.committed == true)
        let late = try await store.storeInstance(site: h1, header: try header("5.5", "5.5.2"), priority: .urgent, compressed: [2], rawSize: 1, sha256: "y")
        #expect(late == .late)
        let study = try #require(try await store.record(uid))
        #expect(study.lateInstances == 1)
        #expect(study.instances == 2)
        #expect(study.priority == .urgent)
        // The coordinators see one commit and the late instance on their stream.
        let entries = try await client.send("XRANGE", RedisArgument(store.keys.committedStream), "-", "+").array ?? []
        #expect(entries.count == 2)
        #expect(try await store.handle(.commit(reason: "explicit"), study: try StudyUID("9.9.9"), actor: site, machine: machine) == .unknownStudy)
    }

    /// Defect of the first wave: commit set `committed=1` in one call and announced the study
    /// in a second; when the second was lost, every retry took the "already committed" branch
    /// and the study stayed `received` forever. Now the commit leaves the study due within
    /// `repairAfter`, and the sweep fans it out.
    @Test func aCommitWhoseAnnouncementIsLostIsFannedOutByTheSweep() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let uid = try StudyUID("6.6")
        try await store.storeInstance(site: h1, header: try header("6.6", "6.6.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        var settings = LifecycleSettings()
        settings.repairAfter = 50
        let quick = StudyStateMachine(settings: settings)
        // The commit is stored, its announcement lost (a string where the stream should be: XADD fails).
        try await client.send("SET", RedisArgument(store.keys.committedStream), "not a stream")
        await #expect(throws: RedisError.self) {
            try await store.handle(.commit(reason: "explicit"), study: uid, actor: site, machine: quick)
        }
        try await client.send("DEL", RedisArgument(store.keys.committedStream))
        let record = try #require(try await store.record(uid))
        #expect(record.committed && record.state == .received)
        // It is due within repairAfter ...
        try await Task.sleep(for: .milliseconds(80))
        #expect(try await store.claimDue(limit: 10, lease: .seconds(5)).contains(uid))
        // ... and the sweep decides the fan-out (the coordinator's performer enqueues).
        struct Recording: StudyEffectPerformer {
            let seen = LockedBox<[StudyEffect]>([])
            func perform(_ effect: StudyEffect, for record: StudyRecord) async throws { seen.withLock { $0.append(effect) } }
        }
        let recorder = Recording()
        let outcome = try await store.handle(.sweep(SweepObservation(now: WallClock.nowMilliseconds())), study: uid, actor: coordinator, machine: quick, effects: recorder)
        guard case .handled(_, let after) = outcome else { Issue.record("study unknown"); return }
        #expect(after.state == .queued)
        #expect(recorder.seen.withLock { $0 } == [.enqueueTasks(generation: 0)])
    }

    /// Two processes decide on the same record: the second decision, made on the older
    /// version, is refused by the script and decided again on the new record.
    @Test func aDecisionOnAnOlderVersionIsDecidedAgain() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let uid = try StudyUID("3.3")
        try await store.storeInstance(site: h1, header: try header("3.3", "3.3.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        try await store.handle(.commit(reason: "explicit"), study: uid, actor: site, machine: machine)
        try await store.handle(.fanOut, study: uid, actor: coordinator, machine: machine, effects: NoOp())
        let stale = try #require(try await store.record(uid))
        #expect(stale.state == .queued)
        try await store.handle(.instanceStarted(generation: 0), study: uid, actor: AuditActor(.worker, "w1"), machine: machine)
        // A second worker decided `instanceStarted` on the stale (queued) record: refused by version.
        var decision = machine.decide(stale, .instanceStarted(generation: 0), now: WallClock.nowMilliseconds())
        #expect(decision.next?.state == .processing)
        decision.next?.version = stale.version
        let handled = try await store.handle(.instanceStarted(generation: 0), study: uid, actor: AuditActor(.worker, "w2"), machine: machine)
        guard case .handled(let redecided, let record) = handled else { Issue.record("study unknown"); return }
        #expect(redecided.next == nil, "decided again on the processing record: nothing to do")
        #expect(record.state == .processing)
        let actions = try await AuditTrail.timeline(client: client, prefix: store.prefix, study: "3.3").map(\.action)
        #expect(actions == ["study.received", "instance.stored", "study.committed", "study.queued", "study.processing"])
        #expect(try await store.countsByState()[.processing] == 1)
        #expect(try await store.countsByState()[.queued] == 0)
        #expect(try await AuditTrail.verify(client: client, prefix: store.prefix).isIntact)
    }

    @Test func retentionDeletesBlobsThenTheRecordButKeepsTheAuditChain() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let uid = try StudyUID("8.8")
        try await store.storeInstance(site: h1, header: try header("8.8", "8.8.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        try await store.storeInstance(site: h1, header: try header("8.8", "8.8.2"), priority: .routine, compressed: [2], rawSize: 1, sha256: "y")
        #expect(try await store.deleteBlobs(study: uid, actor: coordinator) == 2)
        #expect(try await store.deleteBlobs(study: uid, actor: coordinator) == 0)
        #expect(try await store.record(uid)?.blobsDeleted == true)
        #expect(try await store.compressedInstance(study: uid, sop: try SOPInstanceUID("8.8.1")) == nil)
        // Expiry of a failed study past its retention.
        var settings = LifecycleSettings()
        settings.endedRetention = 0
        let machine = StudyStateMachine(settings: settings)
        try await store.handle(.commit(reason: "explicit"), study: uid, actor: site, machine: machine)
        try await client.send("HSET", RedisArgument(store.keys.study(uid).record), "instances", "0")
        try await store.handle(.fanOut, study: uid, actor: coordinator, machine: machine)
        #expect(try await store.record(uid)?.state == .failed)
        try await store.handle(.sweep(SweepObservation(now: WallClock.nowMilliseconds() + 10)), study: uid, actor: coordinator, machine: machine)
        #expect(try await store.record(uid) == nil)
        #expect(try await store.instanceUIDs(uid).isEmpty)
        #expect(try await client.send("ZSCORE", RedisArgument(store.keys.dueStudies), "8.8").isNull)
        #expect(try await client.send("ZSCORE", RedisArgument(store.keys.allStudies), "8.8").isNull)
        #expect(try await store.countsByState().values.reduce(0, +) == 0)
        let actions = try await AuditTrail.timeline(client: client, prefix: store.prefix, study: "8.8").map(\.action)
        #expect(actions.last == "study.expired")
        #expect(try await AuditTrail.verify(client: client, prefix: store.prefix).isIntact)
    }

    @Test func theSweepRepairsTheStateIndex() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        let uid = try StudyUID("4.4")
        try await store.storeInstance(site: h1, header: try header("4.4", "4.4.1"), priority: .routine, compressed: [1], rawSize: 1, sha256: "x")
        // As if a process died between a change and its index update.
        try await client.send("SREM", RedisArgument(store.keys.studies(in: .received)), "4.4")
        try await client.send("SADD", RedisArgument(store.keys.studies(in: .queued)), "4.4")
        try await store.repairIndex(try #require(try await store.record(uid)))
        let counts = try await store.countsByState()
        #expect(counts[.received] == 1 && counts[.queued] == 0)
    }

    @Test func dueStudiesAreClaimedOnceUntilTheLeasePasses() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        try await client.send("ZADD", RedisArgument(store.keys.dueStudies), "1", "1.1", "2", "2.2", RedisArgument(WallClock.nowMilliseconds() + 60_000), "3.3")
        let first = try await store.claimDue(limit: 10, lease: .seconds(30))
        #expect(Set(first.map(\.rawValue)) == ["1.1", "2.2"])
        #expect(try await store.claimDue(limit: 10, lease: .seconds(30)).isEmpty)
    }

    @Test func invalidIdentifiersAreRejectedBeforeAnyWrite() async throws {
        let (client, store) = try await makeStore()
        defer { client.shutdown() }
        #expect(throws: ContractError.self) { try header("1.2.abc", "1.1") }
        #expect(throws: ContractError.self) { try header("1.2", "") }
        #expect(throws: ContractError.self) { try header(String(repeating: "1", count: 65), "1.1") }
        #expect(throws: ContractError.self) { try SiteID("bad site!") }
        let keys = try await client.scanKeys(matching: store.prefix.value + "*")
        #expect(keys.isEmpty)
    }
}

struct NoOp: StudyEffectPerformer {
    func perform(_ effect: StudyEffect, for record: StudyRecord) async throws {}
}

/// A value behind a lock, for test performers that record what they were asked to do.
final class LockedBox<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
