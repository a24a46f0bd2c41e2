import Foundation
import GridContract
import RadGridCore
import RedisClient
import Screening
import StudyLifecycle
import StudyStore
import TaskQueue
import Testing
import TestSupport
import WorkerDaemon

/// The ai stage between real processes' parts: the study task hands a study to the model task
/// in the `ai` queue, the model's findings reach the case with their provenance, and a critical
/// one raises the study to STAT before routing. The model is a stand-in whose answer is known
/// (Models/make-brightest-voxel-model.py), so these tests check the plumbing, not a model.
@Suite("AI stage: model tasks, provenance, STAT", .serialized)
struct ModelStageTests {
    static let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Models").path
    static let provenance = "test-brightest-voxel@0.1.0#sha256:0a9a349502b96da3"

    @Test func aCriticalModelFindingRaisesTheStudyToStatWithItsProvenance() async throws {
        let grid = try await InProcessGrid()
        let catalog = try ModelCatalog.load(directory: Self.modelFolder)
        grid.startCoordinator()
        try grid.startWorker(models: catalog)
        let uid = try await grid.submit(seed: 31, slices: 6)
        let record = try await grid.wait(uid, for: .assigned, where: { $0.priority == .stat })
        let screening = try #require(record.screening)
        #expect(screening.urgency == .critical)
        #expect(screening.priorityRaisedFrom == .routine)
        #expect(screening.models?.map(\.description) == [Self.provenance])
        let modelFindings = screening.findings.filter { $0.model != nil }
        #expect(modelFindings.map(\.code) == ["test.brightest"])
        #expect(modelFindings.first?.source == "test-brightest-voxel@0.1.0")
        #expect(modelFindings.first?.model?.sha256 == catalog.entries[0].manifest.sha256)
        // The rule-based screen of the study task is kept beside the model's.
        #expect(screening.findings.contains { $0.model == nil } || screening.screenedImages == 6)
        let entries = try await grid.store.audit(uid).entries()
        let screened = try #require(entries.first { $0.action == "study.screened.critical" })
        #expect(screened.details.contains("models=\(Self.provenance)"))
        #expect(screened.details.contains("modelFindings=test.brightest:test-brightest-voxel@0.1.0:"))
        // Nothing of the hand-off is left behind.
        let pending = grid.keys.pendingScreening(GridTask.modelKey(study: uid, generation: record.generation))
        #expect(try await grid.client.send("EXISTS", RedisArgument(pending)).int == 0)
        await grid.close()
    }

    @Test func theAIStageRunsOnItsOwnWorkers() async throws {
        let grid = try await InProcessGrid()
        let catalog = try ModelCatalog.load(directory: Self.modelFolder)
        grid.startCoordinator()
        // A decoding worker that knows the models but does not run them.
        try grid.startWorker(models: catalog, stages: [.instance, .study])
        let uid = try await grid.submit(seed: 32, slices: 4)
        let handedOver = try await grid.wait(uid, for: .processing)
        let modelQueue = TaskQueue(client: grid.client, name: GridKeys.modelQueue, configuration: TaskQueueConfiguration(prefix: grid.prefix))
        let key = GridTask.modelKey(study: uid, generation: handedOver.generation)
        try await waitUntil { try await modelQueue.presence(ofKeys: [key]) == [.live] }
        // The sweeper sees the model task alive: no recovery, no new generation.
        try await Task.sleep(for: .seconds(2.5))
        let waiting = try #require(try await grid.store.record(uid))
        #expect(waiting.state == .processing)
        #expect(waiting.generation == handedOver.generation)

        var settings = WorkerSettings()
        settings.prefix = grid.prefix
        settings.models = catalog
        settings.stages = [.ai]
        settings.name = "ai-worker"
        let aiWorker = try WorkerDaemon(client: grid.client, settings: settings)
        #expect(aiWorker.consumers.count == 1)
        let running = Task { try await aiWorker.consumer.run() }
        let record = try await grid.wait(uid, for: .assigned, where: { $0.priority == .stat })
        #expect(record.screening?.models?.map(\.description) == [Self.provenance])
        let processedBy = try await grid.store.audit(uid).entries().first { $0.action == "study.screened.critical" }
        #expect(processedBy?.actor.contains("ai-worker") == true)
        aiWorker.consumer.shutdown()
        _ = await running.result
        await grid.close()
    }

    @Test func aDeadModelTaskFailsItsStudyVisibly() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker(models: try ModelCatalog.load(directory: Self.modelFolder), stages: [.instance, .study])
        let uid = try await grid.submit(seed: 33, slices: 2)
        let modelQueue = TaskQueue(client: grid.client, name: GridKeys.modelQueue, configuration: TaskQueueConfiguration(prefix: grid.prefix))
        var failed = false
        let deadline = ContinuousClock.now + .seconds(20)
        while !failed && ContinuousClock.now < deadline {
            for task in try await modelQueue.claim(consumer: "test-ai", count: 1).tasks {
                _ = try await modelQueue.fail(task, error: "test: model cannot run", permanent: true)
                failed = true
            }
            if !failed { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(failed)
        let record = try await grid.wait(uid, for: .failed)
        #expect(record.failure?.code == StudyFailure.modelTaskDead)
        await grid.close()
    }

    @Test func aWorkerRefusesAModelWhoseChecksumDoesNotMatch() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-models-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["brightest-voxel.onnx", "test-brightest-voxel.json"] {
            try FileManager.default.copyItem(atPath: "\(Self.modelFolder)/\(name)", toPath: folder.appendingPathComponent(name).path)
        }
        var bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent("brightest-voxel.onnx")))
        bytes[bytes.count - 1] ^= 0x01
        try Data(bytes).write(to: folder.appendingPathComponent("brightest-voxel.onnx"))
        let binary = Corpus.packageRoot.appendingPathComponent(".build/debug/radgrid-worker").path
        #expect(FileManager.default.isExecutableFile(atPath: binary), "radgrid-worker is not built")
        let log = folder.appendingPathComponent("worker.log")
        let process = try ChildProcess(name: "radgrid-worker", executable: binary,
                                       arguments: ["--redis", try await TestRedis.url(), "--models", folder.path], outputPath: log.path)
        let status = await process.exit(timeout: .seconds(30))
        if status == nil { process.signal(SIGKILL) }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(status != nil && status != 0, "the worker must stop at start")
        #expect(output.contains("SHA-256"), "\(output)")
        #expect(output.contains("brightest-voxel.onnx"))
    }

    func waitUntil(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("condition not met within \(timeout)")
    }
}
