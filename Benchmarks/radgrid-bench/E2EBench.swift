import ArgumentParser
import Audit
import DICOM
import Gateway
import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import Screening
import StudyLifecycle
import StudyStore
import Zstd

/// `radgrid-bench e2e`: the local grid (`LocalGrid`, as `radgrid up` runs it) end to end.
/// Latency: one 100-image CT study at a time (light load), received → assigned.
/// Throughput: a burst of studies submitted at once, until every one is assigned.
struct E2EBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "e2e", abstract: "Studies/s, images/s and received→assigned latency of the local grid.")

    @Option(help: "Redis URL (default: a private redis-server).") var redis: String?
    @Option(help: "Worker processes.") var workers = 2
    @Option(help: "Task slots per worker (default: the worker's own, its number of cores).") var slots = 0
    @Option(help: "Latency runs (one 100-image study at a time).") var runs = 10
    @Option(help: "Images per latency study.") var images = 100
    @Option(help: "Studies in the throughput burst.") var burst = 20
    @Option(help: "Images per burst study.") var burstImages = 40
    @Option(help: "Matrix size of the phantoms.") var size = 128
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-e2e-\(getpid())").path
        var options = LocalGrid.Options(directory: dir)
        options.redisURL = redis
        options.prefix = KeyPrefix(redis == nil ? "rg:" : "bench\(getpid()):")
        options.workers = workers
        options.slots = slots
        options.stableAge = 30
        let grid = LocalGrid(options: options)
        try await grid.start()
        let client = try RedisClient(url: grid.redisURL)
        let store = StudyStore(client: client, prefix: options.prefix)
        var latencies: [Double] = []
        var stages: [String: [Double]] = [:]
        var throughput = (studies: 0.0, images: 0.0)
        do {
            try await Task.sleep(for: .seconds(1))
            for run in 0..<runs {
                let study = try await submit(store: store, kind: run % 2 == 0 ? .chest : .head, slices: images, seed: UInt64(7_000 + run))
                let seconds = try await waitAssigned(store: store, studies: [study], timeout: 60)
                latencies.append(seconds)
                let times = try await Self.stageTimes(client: client, prefix: options.prefix, study: study)
                for (stage, ms) in times { stages[stage, default: []].append(ms) }
                if !json {
                    print(String(format: "latency run %2d: %.2f s received → assigned", run + 1, seconds)
                          + " (" + times.map { "\($0.0) \(Int($0.1))" }.joined(separator: ", ") + " ms)")
                }
            }
            let started = Date()
            var studies: [StudyUID] = []
            for i in 0..<burst { studies.append(try await submit(store: store, kind: i % 2 == 0 ? .head : .chest, slices: burstImages, seed: UInt64(9_000 + i))) }
            _ = try await waitAssigned(store: store, studies: studies, timeout: 600)
            let elapsed = Date().timeIntervalSince(started)
            throughput = (Double(burst) / elapsed, Double(burst * burstImages) / elapsed)
        } catch {
            client.shutdown()
            await grid.stop(grace: .seconds(5))
            throw error
        }
        client.shutdown()
        await grid.stop(grace: .seconds(10))
        let sorted = latencies.sorted()
        func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))] }
        print(String(format: "e2e: %d workers, latency %d × %d-image studies: p50 %.2f s, p95 %.2f s; burst %d × %d images: %.2f studies/s, %.1f images/s",
                     workers, runs, images, pct(0.5), pct(0.95), burst, burstImages, throughput.studies, throughput.images))
        var stageMedians: [String: Double] = [:]
        for stage in Self.stageOrder {
            let values = (stages[stage] ?? []).sorted()
            guard !values.isEmpty else { continue }
            stageMedians[stage] = values[values.count / 2]
        }
        print("stages (median ms, from the audit chain): " + Self.stageOrder.compactMap { stage in stageMedians[stage].map { "\(stage) \(Int($0.rounded()))" } }.joined(separator: ", "))
        if json {
            let object: [String: Any] = ["benchmark": "e2e", "workers": workers, "studies_per_s": throughput.studies, "images_per_s": throughput.images,
                                         "p50_s": pct(0.5), "p95_s": pct(0.95), "latency_runs": runs, "latency_images": images,
                                         "burst_studies": burst, "burst_images": burstImages, "stage_median_ms": stageMedians]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    static let stageOrder = ["ingest", "commit", "fan_out", "queue_wait", "processing", "hand_off", "routing"]

    /// Where one study's time went, from its audit chain (Redis's clock, ms): intake of every
    /// instance, then each step of the lifecycle.
    static func stageTimes(client: RedisClient, prefix: KeyPrefix, study: StudyUID) async throws -> [(String, Double)] {
        let entries = try await AuditTrail.timeline(client: client, prefix: prefix, study: study.rawValue)
        func first(_ action: String) -> Int64? { entries.first { $0.action == action }?.timestampMilliseconds }
        let lastStored = entries.last { $0.action == "instance.stored" }?.timestampMilliseconds
        let points: [(String, Int64?)] = [
            ("received", first("study.received")), ("stored", lastStored), ("committed", first("study.committed")), ("queued", first("study.queued")),
            ("processing", first("study.processing")), ("screened", first("study.screened") ?? first("study.screened.critical")),
            ("routing", first("study.routing")), ("assigned", first("study.assigned")),
        ]
        var out: [(String, Double)] = []
        for (stage, (from, to)) in zip(stageOrder, zip(points.dropLast(), points.dropFirst())) {
            if let a = from.1, let b = to.1 { out.append((stage, Double(b - a))) }
        }
        return out
    }

    func submit(store: StudyStore, kind: PhantomSpec.Kind, slices: Int, seed: UInt64) async throws -> StudyUID {
        try await PhantomStudy.submit(store: store, kind: kind, size: size, slices: slices, seed: seed)
    }

    func waitAssigned(store: StudyStore, studies: [StudyUID], timeout: Double) async throws -> Double {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var latest = 0.0
            var done = true
            for uid in studies {
                guard let r = try await store.record(uid) else { done = false; break }
                if r.state == .failed || r.state == .quarantined { throw ValidationError("study failed: \(r.failure?.code ?? "?")") }
                guard [StudyState.assigned, .accepted, .reported].contains(r.state) else { done = false; break }
                latest = max(latest, Double(r.updatedAt - r.createdAt) / 1000)
            }
            if done { return latest }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("studies not assigned within \(Int(timeout)) s")
    }
}

/// A phantom CT series submitted as a hospital's upload would be, for the benchmarks.
enum PhantomStudy {
    /// Stores the series through the gateway's own intake path (validate, compress, store once;
    /// minus HTTP) and commits it. One lesion in three studies, by seed.
    static func submit(store: StudyStore, kind: PhantomSpec.Kind, size: Int, slices: Int, seed: UInt64) async throws -> StudyUID {
        let study = try await ingest(store: store, kind: kind, size: size, slices: slices, seed: seed)
        try await store.handle(.commit(reason: "bench"), study: study, actor: AuditActor(.admin, "bench"), machine: StudyStateMachine())
        return study
    }

    /// The same series stored but not committed (the caller commits when its timer starts).
    static func ingest(store: StudyStore, kind: PhantomSpec.Kind, size: Int, slices: Int, seed: UInt64) async throws -> StudyUID {
        let spec = PhantomSpec(kind: kind, width: size, height: size, slices: slices, pixelSpacing: (kind == .head ? 240.0 : 352.0) / Double(size),
                               sliceSpacing: kind == .head ? 140.0 / Double(slices) : 300.0 / Double(slices), lesionDiameterMM: seed % 3 == 0 ? 14 : 0,
                               seed: seed &+ UInt64(getpid()) * 1000)
        var study: StudyUID?
        for outcome in await InstanceIntake(store: store).ingest(try Phantom.generate(spec).dicomFiles(), site: try SiteID("H001"), priority: .routine, expectedStudy: nil) {
            switch outcome {
            case .stored(let header, _, _): study = header.study
            case .failed(_, _, _, let error): throw error
            }
        }
        guard let study else { throw ValidationError("the phantom has no instances") }
        return study
    }
}
