import ArgumentParser
import DICOM
import DICOMWeb
import Edge
import Foundation
import Gateway
import GridContract
import RadGridCore
import RedisClient
import Screening
import StudyStore

/// `radgrid-bench edge`: one CT study crossing an emulated WAN link (Tests/Clients/wan_link.py:
/// latency each way, a bandwidth cap, connection resets at random points) to the central
/// gateway, twice in the same run over identical links: `curl` posting the study's multipart
/// body (starting again from scratch after each reset), then `radgrid edge` forwarding the
/// same study from its spool (zstd, parallel batches, a reset costs one batch).
struct EdgeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edge", abstract: "A study forwarded over an emulated WAN by the edge, against curl's plain upload.")

    @Option(help: "Images in the study.") var images = 200
    @Option(help: "Matrix size (512: a CT slice of 512 KiB).") var size = 512
    @Option(help: "One-way latency of the link, ms.") var latencyMs = 50
    @Option(help: "Bandwidth of the link, Mbit/s.") var mbps = 50.0
    @Option(help: "Mean bytes between connection resets, MB (0: none).") var resetMeanMb = 50.0
    @Option(help: "Seed of the link's resets (both runs use the same).") var seed = 7
    @Option(help: "Give up on curl after this many attempts.") var maxCurlAttempts = 40
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-edge-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let bin = ChildProcess.executableDirectory
        let script = try Self.packageRoot(from: bin) + "/Tests/Clients/wan_link.py"

        // The study, and its STOW-RS body for curl.
        let spec = PhantomSpec(kind: .chest, width: size, height: size, slices: images, pixelSpacing: 352.0 / Double(size), sliceSpacing: 300.0 / Double(images),
                               lesionDiameterMM: 0, seed: 4243)
        let files = try Phantom.generate(spec).dicomFiles()
        var writer = MultipartWriter(boundary: "radgrid-bench-edge")
        for file in files { writer.append(file, contentType: "application/dicom") }
        let body = writer.finish()
        try Data(body).write(to: URL(fileURLWithPath: work + "/body.bin"))
        let studyMB = Double(body.count) / 1_000_000

        // The centre: a private redis-server and `radgrid gateway` (no workers: the link is measured).
        let (redis, url) = try await BenchRedis.start(logDirectory: work)
        defer { redis.terminate(grace: .seconds(2)) }
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let gatewayPort = ChildProcess.freePort()
        let gateway = try ChildProcess(executable: bin + "/radgrid", arguments: ["gateway", "--port", String(gatewayPort), "--redis", url, "--prefix", "rg:", "--stable-age", "3600"],
                                       outputPath: work + "/gateway.log")
        defer { gateway.terminate(grace: .seconds(2)) }
        try await Task.sleep(for: .seconds(1))
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        let study = try StudyUID(try Self.studyUID(files[0]))

        // 1. curl over its own link.
        _ = try await client.send("FLUSHDB")
        var token = try await SiteTokens(client: client, prefix: KeyPrefix("rg:")).issue(site: "H001")
        let curlLink = try await Self.startLink(script: script, upstream: "127.0.0.1:\(gatewayPort)", arguments: linkArguments(stats: work + "/curl-link.json"), log: work + "/curl-link.log")
        var attempts = 0
        let curlStarted = Date()
        var curlDone = false
        var lastCurl = ""
        while attempts < maxCurlAttempts && !curlDone {
            attempts += 1
            let curl = try ChildProcess(executable: "/usr/bin/curl", arguments: [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:", "-H", "Authorization: Bearer \(token)",
                "-H", "Content-Type: \(writer.contentType)", "--data-binary", "@\(work)/body.bin", "\(curlLink.url)/studies/\(study)",
            ], outputPath: work + "/curl.out")
            let status = await curl.exit(timeout: .seconds(900))
            lastCurl = "exit \(status.map(String.init) ?? "?"): \((try? String(contentsOfFile: work + "/curl.out", encoding: .utf8)) ?? "")"
            curlDone = status == 0 && lastCurl.hasSuffix("200")
        }
        let curlSeconds = Date().timeIntervalSince(curlStarted)
        let curlStats = try await Self.stop(curlLink, stats: work + "/curl-link.json")
        let curlStored = try await store.record(study)?.instances ?? 0
        guard curlDone, curlStored == images else { throw ValidationError("curl did not deliver the study in \(attempts) attempts (\(curlStored) stored; last: \(lastCurl))") }
        if !json { print(String(format: "curl: %.1f s, %d attempts, %.1f MB on the wire", curlSeconds, attempts, curlStats.bytesUp / 1e6)) }

        // 2. The edge over an identical link: the study is spooled first (not complete, so not
        // sent), then completed; the clock runs from the commit to "forwarded".
        _ = try await client.send("FLUSHDB")
        token = try await SiteTokens(client: client, prefix: KeyPrefix("rg:")).issue(site: "H001")
        let edgeLink = try await Self.startLink(script: script, upstream: "127.0.0.1:\(gatewayPort)", arguments: linkArguments(stats: work + "/edge-link.json"), log: work + "/edge-link.log")
        let edgePort = ChildProcess.freePort()
        let edge = try ChildProcess(executable: bin + "/radgrid", arguments: [
            "edge", "--upstream", edgeLink.url, "--token", token, "--spool", work + "/spool", "--host", "127.0.0.1", "--port", String(edgePort),
            "--dimse-port=-1", "--stable-age", "3600",
        ], outputPath: work + "/edge.log")
        defer { edge.terminate(grace: .seconds(2)) }
        try await Task.sleep(for: .seconds(1))
        let local = try ChildProcess(executable: "/usr/bin/curl", arguments: [
            "-s", "-f", "-o", "/dev/null", "-H", "Expect:", "-H", "Authorization: Bearer \(token)", "-H", "Content-Type: \(writer.contentType)",
            "--data-binary", "@\(work)/body.bin", "http://127.0.0.1:\(edgePort)/studies/\(study)",
        ], outputPath: work + "/edge-stow.log")
        guard await local.exit(timeout: .seconds(120)) == 0 else { throw ValidationError("the edge did not take the study; see \(work)/edge.log") }
        let edgeStarted = Date()
        let commit = try ChildProcess(executable: "/usr/bin/curl", arguments: ["-s", "-f", "-o", "/dev/null", "-X", "POST", "-H", "Authorization: Bearer \(token)",
                                                                            "http://127.0.0.1:\(edgePort)/studies/\(study)/commit"], outputPath: work + "/edge-commit.log")
        guard await commit.exit(timeout: .seconds(30)) == 0 else { throw ValidationError("the edge refused the commit") }
        while try EdgeStatus.read(spool: work + "/spool").forwarded < 1 {
            guard Date().timeIntervalSince(edgeStarted) < 900 else { throw ValidationError("the edge did not forward the study in 900 s; see \(work)/edge.log") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let edgeSeconds = Date().timeIntervalSince(edgeStarted)
        let edgeStats = try await Self.stop(edgeLink, stats: work + "/edge-link.json")
        let edgeStored = try await store.record(study)?.instances ?? 0
        guard edgeStored == images else { throw ValidationError("the centre holds \(edgeStored) of \(images) images after the edge") }
        if !json { print(String(format: "edge: %.1f s, %d resets, %.1f MB on the wire", edgeSeconds, edgeStats.resets, edgeStats.bytesUp / 1e6)) }

        let result: [String: Any] = [
            "bench": "edge", "images": images, "study_mb": (studyMB * 10).rounded() / 10,
            "link": ["latency_ms_each_way": latencyMs, "mbps": mbps, "reset_mean_mb": resetMeanMb, "seed": seed],
            "curl": ["seconds": (curlSeconds * 10).rounded() / 10, "attempts": attempts, "resets": curlStats.resets,
                     "wire_mb": (curlStats.bytesUp / 1e5).rounded() / 10, "study_mb_per_s": (studyMB / curlSeconds * 100).rounded() / 100],
            "edge": ["seconds": (edgeSeconds * 10).rounded() / 10, "resets": edgeStats.resets, "wire_mb": (edgeStats.bytesUp / 1e5).rounded() / 10,
                     "study_mb_per_s": (studyMB / edgeSeconds * 100).rounded() / 100,
                     "wire_mb_per_s": (edgeStats.bytesUp / 1e6 / edgeSeconds * 100).rounded() / 100],
            "speedup": (curlSeconds / edgeSeconds * 100).rounded() / 100,
        ]
        if !json { print(String(format: "edge delivers the study %.2f× as fast as curl", curlSeconds / edgeSeconds)) }
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
    }

    func linkArguments(stats: String) -> [String] {
        ["--latency-ms", String(latencyMs), "--mbps", String(mbps), "--reset-mean-mb", String(resetMeanMb), "--seed", String(seed), "--stats-file", stats]
    }

    struct Link {
        let process: ChildProcess
        let url: String
    }

    static func startLink(script: String, upstream: String, arguments: [String], log: String) async throws -> Link {
        let process = try ChildProcess(executable: "/usr/bin/python3", arguments: ["-u", script, "--upstream", upstream] + arguments, outputPath: log)
        for _ in 0..<100 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let address = text.components(separatedBy: "listening on ").dropFirst().first?.split(separator: "\n").first {
                return Link(process: process, url: "http://\(address)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the WAN emulator did not start; see \(log)")
    }

    /// Stops the link and reads what crossed it.
    static func stop(_ link: Link, stats: String) async throws -> (bytesUp: Double, resets: Int) {
        _ = link.process.signal(SIGTERM)
        _ = await link.process.exit(timeout: .seconds(5))
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stats))) as? [String: Any] ?? [:]
        return ((object["bytes_up"] as? NSNumber)?.doubleValue ?? 0, (object["resets"] as? NSNumber)?.intValue ?? 0)
    }

    static func studyUID(_ file: [UInt8]) throws -> String {
        guard let uid = try DICOMFile.readHeader(file).dataSet.string(.studyInstanceUID) else { throw ValidationError("phantom without a study UID") }
        return uid
    }

    /// The checkout the benchmark was built in (`.build/<config>` sits in it).
    static func packageRoot(from bin: String) throws -> String {
        var url = URL(fileURLWithPath: bin)
        for _ in 0..<6 {
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
            url.deleteLastPathComponent()
        }
        throw ValidationError("cannot find the package root above \(bin)")
    }
}
