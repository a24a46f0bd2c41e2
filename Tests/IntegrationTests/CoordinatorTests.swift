import Audit
import Coordinator
import DICOM
import Foundation
import Gateway
@testable import RadGridCtl
import GridContract
import Imaging
import RadGridCore
import RedisClient
import Routing
import Screening
import StudyLifecycle
import StudyStore
import TaskQueue
import Testing
import TestSupport
import WorkerDaemon

/// The coordinator and a worker in this process against a real Redis, with the router's
/// scripts, on fast lifecycle timings: the joints between processes, each broken on purpose.
final class InProcessGrid: @unchecked Sendable {
    let client: RedisClient
    let prefix: KeyPrefix
    let keys: GridKeys
    let store: StudyStore
    let router: ExpertRouter
    let queue: TaskQueue
    var settings = CoordinatorSettings()
    private var coordinatorTask: Task<Void, any Error>?
    private var workerTask: Task<Void, any Error>?
    private(set) var worker: WorkerDaemon?

    /// `demoRoster`: the 600 experts `radgrid up` loads (every modality covered) instead of three neuroradiologists.
    init(demoRoster: Bool = false) async throws {
        client = try RedisClient(url: try await TestRedis.url())
        prefix = KeyPrefix(TestRedis.uniquePrefix("coord"))
        keys = GridKeys(prefix: prefix)
        store = StudyStore(client: client, prefix: prefix)
        router = ExpertRouter(redis: client, prefix: prefix, actor: "test")
        queue = TaskQueue(client: client, name: GridKeys.taskQueue, configuration: TaskQueueConfiguration(prefix: prefix))
        settings.prefix = prefix
        settings.lifecycle.stableAge = 300
        settings.lifecycle.repairAfter = 400
        settings.lifecycle.liveCheckEvery = 1_000
        settings.claimIdle = .seconds(2)
        settings.sweepLease = .seconds(2)
        if demoRoster {
            var experts = RosterGenerator.generate(count: 600, seed: 42)
            for i in experts.indices { experts[i].shifts = [] }
            try await router.upsertExperts(experts, presence: .online, heartbeatUntil: WallClock.nowMilliseconds() + 86_400_000)
            return
        }
        // Three neuroradiologists for H001, plenty of capacity.
        let experts = (1...3).map { n in
            Expert(id: "N\(n)", name: "Dr. N\(n)", specialties: [try! Specialty("CT/head/neuro"), try! Specialty("CT/chest/thoracic")],
                   credentials: [Credential(scope: "H001", expires: nil)], capacity: 50, timeZone: "UTC", shifts: [], homeSite: nil, licence: Licence(number: "L-1"), practiceSince: 0)
        }
        try await router.upsertExperts(experts, presence: .online, heartbeatUntil: WallClock.nowMilliseconds() + 86_400_000)
    }

    func startCoordinator(name: String = "c1") {
        var settings = self.settings
        settings.consumerName = name
        let coordinator = Coordinator(client: client, settings: settings)
        coordinatorTask = Task { try await coordinator.run() }
    }

    func stopCoordinator() async {
        coordinatorTask?.cancel()
        _ = await coordinatorTask?.result
        coordinatorTask = nil
    }

    func startWorker(models: ModelCatalog = .empty, stages: Set<WorkerStage> = Set(WorkerStage.allCases)) throws {
        var workerSettings = WorkerSettings()
        workerSettings.models = models
        workerSettings.stages = stages
        workerSettings.prefix = prefix
        workerSettings.slots = 2
        workerSettings.lease = .seconds(5)
        workerSettings.lifecycle = settings.lifecycle
        let worker = try WorkerDaemon(client: client, settings: workerSettings)
        self.worker = worker
        workerTask = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for consumer in worker.consumers { group.addTask { try await consumer.run() } }
                try await group.waitForAll()
            }
        }
    }

    func stopWorker() async {
        for consumer in worker?.consumers ?? [] { consumer.shutdown() }
        _ = await workerTask?.result
        workerTask = nil
    }

    /// Stores a small head CT phantom through the gateway's intake; returns its UID.
    func submit(seed: UInt64, slices: Int = 6, commit: Bool = true) async throws -> StudyUID {
        var spec = PhantomSpec.small(.head, seed: seed)
        spec.slices = slices
        let intake = InstanceIntake(store: store)
        var uid: StudyUID?
        for bytes in try Phantom.generate(spec).dicomFiles() {
            switch await intake.ingest(bytes, site: try SiteID("H001"), priority: .routine, expectedStudy: nil) {
            case .stored(let header, _, _): uid = header.study
            case .failed(_, _, _, let error): throw error
            }
        }
        let study = try #require(uid)
        if commit { try await store.handle(.commit(reason: "test"), study: study, actor: AuditActor(.admin, "test"), machine: StudyStateMachine(settings: settings.lifecycle)) }
        return study
    }

    /// Waits until the study is in `state` (or `timeout` passes); returns its record.
    @discardableResult
    func wait(_ uid: StudyUID, for state: StudyState, timeout: Duration = .seconds(30), where extra: (StudyRecord) -> Bool = { _ in true }) async throws -> StudyRecord {
        let deadline = ContinuousClock.now + timeout
        var last: StudyRecord?
        while ContinuousClock.now < deadline {
            last = try await store.record(uid)
            if let last, last.state == state, extra(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("study \(uid) is \(last?.state.rawValue ?? "gone"), expected \(state.rawValue)")
        return try #require(last)
    }

    func actions(_ uid: StudyUID) async throws -> [String] {
        try await store.audit(uid).entries().map(\.action)
    }

    func close() async {
        await stopWorker()
        await stopCoordinator()
        client.shutdown()
    }
}

@Suite("Coordinator: the joints between processes", .serialized)
struct CoordinatorTests {
    @Test func aStudyFlowsFromCommitToAnExpert() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let uid = try await grid.submit(seed: 1)
        let record = try await grid.wait(uid, for: .assigned)
        #expect(record.expert != nil && record.caseID != nil)
        #expect(record.screening?.screenedImages == 6)
        #expect(try await grid.store.outcomes(uid).values.allSatisfy { $0 == .image })
        let actions = try await grid.actions(uid)
        for expected in ["study.committed", "study.queued", "study.processing", "study.screened", "study.routing", "study.assigned"] {
            #expect(actions.contains(expected), "\(expected) missing from \(actions)")
        }
        // The instance results were dropped by the study task's completion.
        let results = try await grid.client.scanKeys(matching: grid.queue.keys.result("*"))
        #expect(results.isEmpty)
        await grid.close()
    }

    /// Defect of the first wave: the coordinator followed router outcomes with a GET/SET
    /// cursor and applied them without checking the expert, so replaying an old `decline`
    /// moved a study now assigned to another expert back to `routing`. Now outcomes come
    /// through a consumer group and older or foreign events change nothing: replaying the
    /// whole router stream leaves every study where it is.
    @Test func replayingTheRouterStreamChangesNothing() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let uid = try await grid.submit(seed: 2)
        let first = try await grid.wait(uid, for: .assigned)
        let caseID = try #require(first.caseID)
        let e1 = try #require(first.expert)
        _ = try await grid.router.decline(caseID: caseID.rawValue, expert: e1.rawValue, reason: .workload)
        let second = try await grid.wait(uid, for: .assigned) { $0.expert != e1 }
        let e2 = try #require(second.expert)
        try await Task.sleep(for: .milliseconds(300))
        let before = try await grid.actions(uid)
        // Replay every router event from the start.
        try await grid.client.send("XGROUP", "SETID", RedisArgument(grid.keys.routerEvents), RedisArgument(Coordinator.consumerGroup), "0")
        try await Task.sleep(for: .seconds(2))
        let after = try #require(try await grid.store.record(uid))
        #expect(after.state == .assigned && after.expert == e2)
        #expect(try await grid.actions(uid) == before, "the replay wrote audit entries")
        #expect(try await AuditTrail.verify(client: grid.client, prefix: grid.prefix).isIntact)
        await grid.close()
    }

    /// A coordinator that dies leaves nothing stuck: a commit whose announcement nobody read
    /// and a screened study whose hand-off entry was lost are found by the sweeper.
    @Test func lostStreamEntriesAreRecoveredByTheSweeper() async throws {
        let grid = try await InProcessGrid()
        // No coordinator yet: commit, then lose the committed stream.
        let committed = try await grid.submit(seed: 3)
        try await grid.client.send("DEL", RedisArgument(grid.keys.committedStream))
        // Another study is processed by a worker while no coordinator runs; its hand-off entry is lost.
        try grid.startWorker()
        let screened = try await grid.submit(seed: 4, commit: true)
        // Fan it out by hand (the coordinator's effect), so the worker screens it.
        let coordinatorEffects = Coordinator(client: grid.client, settings: grid.settings)
        try await coordinatorEffects.handle(.fanOut, study: screened)
        try await grid.wait(screened, for: .screened)
        // Two slots in a cluster: one DEL each.
        try await grid.client.send("DEL", RedisArgument(grid.keys.screenedStream))
        try await grid.client.send("DEL", RedisArgument(grid.keys.committedStream))
        grid.startCoordinator()
        try await grid.wait(committed, for: .assigned, timeout: .seconds(20))
        try await grid.wait(screened, for: .assigned, timeout: .seconds(20))
        await grid.close()
    }

    /// Defect of the first wave: a study task dead-lettered (its worker kept dying, or its
    /// attempts ran out) left the study `processing` forever. The coordinators read the
    /// dead-letter stream and fail the study with the reason.
    @Test func aDeadStudyTaskFailsItsStudy() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        let uid = try await grid.submit(seed: 5, slices: 2)
        try await grid.wait(uid, for: .queued)
        // Play a worker that finishes the instances and then fails the study task for good.
        var failedStudyTask = false
        let deadline = ContinuousClock.now + .seconds(20)
        while !failedStudyTask && ContinuousClock.now < deadline {
            let batch = try await grid.queue.claim(consumer: "test-worker", count: 10)
            for task in batch.tasks {
                if task.key.hasPrefix("s/") {
                    _ = try await grid.queue.fail(task, error: "test: study task cannot run", permanent: true)
                    failedStudyTask = true
                } else {
                    _ = try await grid.queue.complete(task, result: Array("{\"outcome\":\"failed\",\"code\":\"test\"}\n".utf8))
                }
            }
            if batch.tasks.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(failedStudyTask)
        let record = try await grid.wait(uid, for: .failed)
        #expect(record.failure?.code == StudyFailure.studyTaskDead)
        await grid.close()
    }

    /// Defect of the first wave: a task dead-lettered as poison (its worker kept dying) left
    /// its study `processing` forever. An instance task that dies now counts its fan-in down;
    /// the study task finds its result missing, and the case is routed flagged partial.
    @Test func aDeadInstanceTaskLeavesTheStudyPartialNotStuck() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        let uid = try await grid.submit(seed: 10, slices: 3)
        try await grid.wait(uid, for: .queued)
        // One instance dies before any worker runs (as after its worker died on it every time).
        var victim: SOPInstanceUID?
        let deadline = ContinuousClock.now + .seconds(10)
        while victim == nil && ContinuousClock.now < deadline {
            if let task = try await grid.queue.claim(consumer: "doomed", count: 1).tasks.first, case .instance(let instance) = try GridTask.decode(task.payload) {
                #expect(try await grid.queue.fail(task, error: "worker died on it", permanent: true) == .deadLettered)
                victim = instance.sop
            }
        }
        let dead = try #require(victim)
        try grid.startWorker()
        let record = try await grid.wait(uid, for: .assigned)
        #expect(record.screening?.failedInstances == [FailedInstance(sop: dead, code: "worker.noResult")])
        #expect(record.screening?.screenedImages == 2)
        await grid.close()
    }

    /// An instance that cannot be read fails alone; the case is routed flagged partial.
    @Test func anUnreadableInstanceFailsAloneAndTheCaseIsPartial() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let uid = try await grid.submit(seed: 6, slices: 4, commit: false)
        // Corrupt one stored instance (as a broken upload would be).
        let sops = try await grid.store.instanceUIDs(uid)
        try await grid.client.send("SET", RedisArgument(grid.keys.study(uid).blob(sops[0])), "not zstd at all")
        try await grid.store.handle(.commit(reason: "test"), study: uid, actor: AuditActor(.admin, "t"), machine: StudyStateMachine(settings: grid.settings.lifecycle))
        let record = try await grid.wait(uid, for: .assigned)
        let screening = try #require(record.screening)
        #expect(screening.isPartial && screening.failedInstances.map(\.sop) == [sops[0]])
        #expect(screening.failedInstances.first?.code.hasPrefix("zstd.") == true)
        let outcomes = try await grid.store.outcomes(uid)
        #expect(outcomes[sops[0]] != .image && outcomes.values.filter { $0 == .image }.count == 3)
        await grid.close()
    }

    /// Defect of the first wave: when deleting blobs failed after `reported`, a replay hit an
    /// invalid transition and the blobs stayed forever. Now a reported study with blobs left
    /// is due, and its sweep deletes them.
    @Test func blobsLeftAfterTheReportAreDeletedByTheSweep() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let uid = try await grid.submit(seed: 7, slices: 2)
        let assigned = try await grid.wait(uid, for: .assigned)
        let caseID = try #require(assigned.caseID), expert = try #require(assigned.expert)
        try await grid.router.accept(caseID: caseID.rawValue, expert: expert.rawValue)
        try await grid.router.complete(caseID: caseID.rawValue, expert: expert.rawValue, reportReference: "R-1")
        try await grid.wait(uid, for: .reported) { $0.blobsDeleted }
        // Blobs back (as if their deletion had failed), the flag cleared, the study due now.
        let sop = try #require(try await grid.store.instanceUIDs(uid).first)
        try await grid.client.send("SET", RedisArgument(grid.keys.study(uid).blob(sop)), "x")
        try await grid.client.send("HSET", RedisArgument(grid.keys.study(uid).record), "blobsDeleted", "0")
        try await grid.client.send("ZADD", RedisArgument(grid.keys.dueStudies), "0", RedisArgument(uid.rawValue))
        try await grid.wait(uid, for: .reported, timeout: .seconds(10)) { $0.blobsDeleted }
        #expect(try await grid.store.compressedInstance(study: uid, sop: sop) == nil)
        await grid.close()
    }

    /// A study no instance of which could be read is quarantined with its reason; after the
    /// cause is fixed an operator requeues it (a new generation of tasks, audited) and it is
    /// routed. A requeue of a study that did not stop is refused.
    @Test func aQuarantinedStudyIsRequeuedAfterAFix() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let uid = try await grid.submit(seed: 9, slices: 2, commit: false)
        let sops = try await grid.store.instanceUIDs(uid)
        var originals: [[UInt8]] = []
        for sop in sops {
            originals.append(try #require(try await grid.store.compressedInstance(study: uid, sop: sop)))
            try await grid.client.send("SET", RedisArgument(grid.keys.study(uid).blob(sop)), "garbage")
        }
        try await grid.store.handle(.commit(reason: "test"), study: uid, actor: AuditActor(.admin, "t"), machine: StudyStateMachine(settings: grid.settings.lifecycle))
        let quarantined = try await grid.wait(uid, for: .quarantined)
        #expect(quarantined.failure?.code == StudyFailure.noReadableImages)
        for (sop, bytes) in zip(sops, originals) { try await grid.client.send("SET", RedisArgument(grid.keys.study(uid).blob(sop)), RedisArgument(bytes)) }
        let outcome = try await StudyCommand.Requeue.requeue(uid, reason: "blobs restored", actor: "ops", client: grid.client, prefix: grid.prefix)
        guard case .requeued(_, let generation) = outcome else { Issue.record("not requeued: \(outcome)"); return }
        #expect(generation == 1)
        let routed = try await grid.wait(uid, for: .assigned)
        #expect(routed.failure == nil && routed.screening?.isPartial == false)
        let again = try await StudyCommand.Requeue.requeue(uid, reason: "again", actor: "ops", client: grid.client, prefix: grid.prefix)
        guard case .notApplicable = again else { Issue.record("a routed study was requeued"); return }
        #expect(try await grid.actions(uid).contains("study.requeued"))
        await grid.close()
    }

    /// A hospital's study is more than CT slices: this one mixes CT slices, a structured
    /// report, an RGB secondary capture, a JPEG-LS and a JPEG 2000 image. It is routed, and the
    /// study lists every instance with its status.
    @Test func aMixedStudyIsRoutedWithEveryInstanceListed() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let study = "1.2.826.0.1.7777"
        var files: [[UInt8]] = []
        var spec = PhantomSpec.small(.head, seed: 77)
        spec.slices = 4
        for bytes in try Phantom.generate(spec).dicomFiles() { files.append(try Self.rewrite(bytes, study: study, series: "\(study).1", sop: "\(study).1.\(files.count + 1)")) }
        let fixtures = Corpus.packageRoot.appendingPathComponent("Tests/DICOMTests/Resources/codecs")
        for (n, name) in ["jls80_ct16.dcm", "j2k90_ct16.dcm", "j2k90_rgb_odd.dcm"].enumerated() {
            let bytes = Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
            files.append(try Self.rewrite(bytes, study: study, series: "\(study).\(n + 2)", sop: "\(study).\(n + 2).1"))
        }
        var report = DataSet()
        report.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.88.11") // Basic Text SR
        report.set(.modality, "SR")
        files.append(try Self.rewrite(try DICOMWriter.write(report), study: study, series: "\(study).9", sop: "\(study).9.1"))
        let intake = InstanceIntake(store: grid.store)
        for bytes in files {
            guard case .stored = await intake.ingest(bytes, site: try SiteID("H001"), priority: .routine, expectedStudy: nil) else {
                Issue.record("an instance was refused at the door"); return
            }
        }
        let uid = try StudyUID(study)
        try await grid.store.handle(.commit(reason: "test"), study: uid, actor: AuditActor(.site, "H001"), machine: StudyStateMachine(settings: grid.settings.lifecycle))
        let record = try await grid.wait(uid, for: .assigned)
        #expect(record.screening?.isPartial == false)
        #expect(record.screening?.nonImageInstances == 1)
        let outcomes = try await grid.store.outcomes(uid)
        #expect(outcomes.count == files.count)
        #expect(outcomes[try SOPInstanceUID("\(study).9.1")] == .nonImage(kind: "SR"))
        #expect(outcomes.values.filter { $0 == .image }.count == files.count - 1)
        // Worklist thumbnails: the screened series and the colour image (its colour path).
        let thumbnails = try await grid.store.thumbnails(uid)
        #expect(thumbnails["\(study).1"]?.starts(with: PNGEncoder.signature) == true)
        let colour = try #require(thumbnails["\(study).4"])
        #expect(colour.starts(with: PNGEncoder.signature) && colour[25] == 2, "an RGB PNG (IHDR colour type 2)")
        await grid.close()
    }

    /// A copy of an instance with new UIDs (keeping its transfer syntax and pixel data).
    static func rewrite(_ bytes: [UInt8], study: String, series: String, sop: String) throws -> [UInt8] {
        let file = try DICOMFile.read(bytes)
        var dataSet = file.dataSet
        dataSet.set(.studyInstanceUID, study)
        dataSet.set(.seriesInstanceUID, series)
        dataSet.set(.sopInstanceUID, sop)
        return try DICOMWriter.write(dataSet, encapsulatedTransferSyntaxUID: file.transferSyntax.isEncapsulated ? file.transferSyntax.uid : nil)
    }

    /// Instances arriving after the case is routed are counted, audited and shown on the study.
    @Test func lateInstancesAreFlaggedOnTheStudy() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        var spec = PhantomSpec.small(.head, seed: 8)
        spec.slices = 3
        let files = try Phantom.generate(spec).dicomFiles()
        let intake = InstanceIntake(store: grid.store)
        var uid: StudyUID?
        for bytes in files.dropLast() {
            if case .stored(let header, _, _) = await intake.ingest(bytes, site: try SiteID("H001"), priority: .routine, expectedStudy: nil) { uid = header.study }
        }
        let study = try #require(uid)
        try await grid.store.handle(.commit(reason: "test"), study: study, actor: AuditActor(.admin, "t"), machine: StudyStateMachine())
        try await grid.wait(study, for: .assigned)
        if case .stored(_, _, let outcome) = await intake.ingest(files.last!, site: try SiteID("H001"), priority: .routine, expectedStudy: nil) {
            #expect(outcome == .late)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, !(try await grid.actions(study)).contains("study.lateInstance") { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await grid.actions(study).contains("study.lateInstance"))
        #expect(try await grid.store.record(study)?.lateInstances == 1)
        await grid.close()
    }
}
