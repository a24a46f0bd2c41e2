import ArgumentParser
import DIMSEGateway
import Foundation
import GridContract
import RadGridCore
import RedisClient
import Screening

/// `radgrid-bench dimse`: a CT series pushed by dcmtk's `storescu` over loopback, received by
/// `radgrid dimse` (validate, zstd, store into Redis, audit) and, in the same run, by dcmtk's
/// own `storescp` writing it to disk. Then the same series split over N concurrent
/// associations into the grid.
struct DIMSEBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dimse", abstract: "Images/s and MB/s received over C-STORE, against dcmtk's storescp.")

    @Option(help: "Images in the series.") var images = 200
    @Option(help: "Matrix size (512: a CT slice of 512 KiB).") var size = 512
    @Option(help: "Rounds of each measurement; the median is reported.") var rounds = 3
    @Option(help: "Concurrent associations for the scaling run.") var associations = 4

    @Flag(help: "Print one JSON object as the last line.") var json = false

    /// dcmtk as packaged leaves Nagle's algorithm on; with delayed ACKs that costs some 40 ms
    /// per message on loopback. Every dcmtk process here runs with it off (TCP_NODELAY=1), as
    /// a tuned PACS would, so the comparison is with storescp at its best.
    static var dcmtkEnvironment: [String: String] {
        var environment = ProcessEnvironment.current
        environment["TCP_NODELAY"] = "1"
        return environment
    }

    func run() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-dimse-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work + "/series", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        var bytes = 0
        let spec = PhantomSpec(kind: .chest, width: size, height: size, slices: images, pixelSpacing: 352.0 / Double(size), sliceSpacing: 300.0 / Double(images),
                               lesionDiameterMM: 0, seed: 4242)
        for (k, file) in try Phantom.generate(spec).dicomFiles().enumerated() {
            try Data(file).write(to: URL(fileURLWithPath: String(format: "%@/series/%04d.dcm", work, k)))
            bytes += file.count
        }
        let megabytes = Double(bytes) / 1_048_576
        let bin = ChildProcess.executableDirectory

        // dcmtk's storescp to disk.
        let scpPort = ChildProcess.freePort()
        try FileManager.default.createDirectory(atPath: work + "/storescp", withIntermediateDirectories: true)
        let storescp = try ChildProcess(executable: "/usr/bin/storescp", arguments: ["--aetitle", "PACS", "--output-directory", work + "/storescp", "--accept-all",
                                                                                  "--disable-host-lookup", String(scpPort)], environment: Self.dcmtkEnvironment,
                                         outputPath: work + "/storescp.log")
        defer { storescp.terminate(grace: .seconds(2)) }

        // The grid: a private redis-server and `radgrid dimse`.
        let (redis, url) = try await BenchRedis.start(logDirectory: work)
        defer { redis.terminate(grace: .seconds(2)) }
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        try await SiteNetwork(client: client, prefix: KeyPrefix("rg:")).register(aeTitle: "H001", .init(site: "H001", addresses: ["127.0.0.1"]))
        let dimsePort = ChildProcess.freePort()
        let dimse = try ChildProcess(executable: bin + "/radgrid", arguments: ["dimse", "--port", String(dimsePort), "--redis", url, "--prefix", "rg:", "--no-send-results",
                                                                             "--max-associations-per-site", "16"],
                                     outputPath: work + "/dimse.log")
        defer { dimse.terminate(grace: .seconds(2)) }
        try await Task.sleep(for: .seconds(1))

        var storescpSeconds: [Double] = []
        var gridSeconds: [Double] = []
        for round in 0..<rounds {
            storescpSeconds.append(try timed(["-aet", "H001", "-aec", "PACS", "+sd", "127.0.0.1", String(scpPort), work + "/series"]))
            _ = try await client.send("FLUSHDB")
            try await SiteNetwork(client: client, prefix: KeyPrefix("rg:")).register(aeTitle: "H001", .init(site: "H001", addresses: ["127.0.0.1"]))
            gridSeconds.append(try timed(["-aet", "H001", "-aec", "RADGRID", "+sd", "127.0.0.1", String(dimsePort), work + "/series"]))
            if !json { print(String(format: "round %d: storescp %.2f s, radgrid dimse %.2f s", round + 1, storescpSeconds.last!, gridSeconds.last!)) }
        }
        let stored = try await client.send("EVAL", "return #redis.call('KEYS', 'rg:{s:*}:blob:*')", "0").int ?? 0
        guard stored == Int64(images) else { throw ValidationError("the grid stored \(stored) of \(images) images; see \(work)/dimse.log") }

        // N associations at once, each a slice of the series.
        let files = try FileManager.default.contentsOfDirectory(atPath: work + "/series").sorted()
        for n in 0..<associations { try FileManager.default.createDirectory(atPath: work + "/part\(n)", withIntermediateDirectories: true) }
        for (k, file) in files.enumerated() { try FileManager.default.copyItem(atPath: work + "/series/" + file, toPath: work + "/part\(k % associations)/" + file) }
        var concurrentSeconds: [Double] = []
        for _ in 0..<rounds {
            _ = try await client.send("FLUSHDB")
            try await SiteNetwork(client: client, prefix: KeyPrefix("rg:")).register(aeTitle: "H001", .init(site: "H001", addresses: ["127.0.0.1"]))
            let started = Date()
            let senders = try (0..<associations).map { n in
                try ChildProcess(executable: "/usr/bin/storescu", arguments: ["-aet", "H001", "-aec", "RADGRID", "+sd", "127.0.0.1", String(dimsePort), work + "/part\(n)"],
                                 environment: Self.dcmtkEnvironment, outputPath: work + "/storescu-\(n).log")
            }
            for sender in senders { guard await sender.exit(timeout: .seconds(600)) == 0 else { throw ValidationError("storescu failed; see \(work)") } }
            concurrentSeconds.append(Date().timeIntervalSince(started))
        }

        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let scp = median(storescpSeconds), grid = median(gridSeconds), concurrent = median(concurrentSeconds)
        let result: [String: Any] = [
            "bench": "dimse", "images": images, "series_mb": (megabytes * 10).rounded() / 10, "rounds": rounds,
            "storescp_images_per_s": (Double(images) / scp).rounded(), "storescp_mb_per_s": (megabytes / scp).rounded(),
            "radgrid_images_per_s": (Double(images) / grid).rounded(), "radgrid_mb_per_s": (megabytes / grid).rounded(),
            "ratio_to_storescp": ((scp / grid) * 100).rounded() / 100,
            "associations": associations, "radgrid_concurrent_images_per_s": (Double(images) / concurrent).rounded(),
            "radgrid_concurrent_mb_per_s": (megabytes / concurrent).rounded(),
            "concurrent_speedup": ((grid / concurrent) * 100).rounded() / 100,
            "cores": ProcessInfo.processInfo.activeProcessorCount,
        ]
        if !json {
            print(String(format: "storescp (disk): %.0f images/s, %.0f MB/s", Double(images) / scp, megabytes / scp))
            print(String(format: "radgrid dimse (Redis, zstd): %.0f images/s, %.0f MB/s (%.2f× storescp)", Double(images) / grid, megabytes / grid, scp / grid))
            print(String(format: "radgrid dimse, %d associations: %.0f images/s (%.2f× one)", associations, Double(images) / concurrent, grid / concurrent))
        }
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
    }

    /// Wall time of one storescu run.
    func timed(_ arguments: [String]) throws -> Double {
        let started = Date()
        let process = try ChildProcess(executable: "/usr/bin/storescu", arguments: arguments, environment: Self.dcmtkEnvironment, outputPath: FileManager.default.temporaryDirectory.path + "/radgrid-bench-storescu.log")
        guard process.wait(timeout: .seconds(600)) == 0 else { throw ValidationError("storescu failed: \(arguments.joined(separator: " "))") }
        return Date().timeIntervalSince(started)
    }
}
