import ArgumentParser
import DICOM
import DICOMWeb
import Foundation
import Gateway
import GridContract
import RadGridCore
import RedisClient
import Screening
import StudyStore

/// `radgrid-bench gateway`: N clients upload large studies to `radgrid gateway` at once (curl,
/// one study each, 4 sites); the gateway's peak resident memory (VmHWM) and the ingest rate.
/// A client answered 429 (too many uploads at once) waits its Retry-After and sends again.
/// Then STOW-RS ingest side by side with Orthanc (GatewayIngestBench.swift).
struct GatewayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gateway", abstract: "Peak gateway memory while many clients upload large studies at once; STOW-RS ingest against Orthanc.")

    @Option(help: "Clients uploading at once.") var clients = 16
    @Option(help: "Images per study (512×512 int16: 200 MB at 400).") var images = 400
    @Option(help: "Matrix size.") var size = 512
    @Option(help: "Ingest comparison: parallel clients (curl), the same for the gateway and Orthanc.") var ingestClients = 4
    @Option(help: "Ingest comparison: measured requests per server and round, one study each.") var ingestRequests = 40
    @Option(help: "Ingest comparison: images per request.") var ingestImages = 20
    @Option(help: "Ingest comparison: rounds (the median is reported).") var ingestRounds = 3
    @Flag(help: "Skip the ingest comparison with Orthanc.") var skipIngest = false
    @Flag(help: "Skip the memory measurement (the ingest comparison only).") var skipMemory = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-gateway-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (redis, url) = try await BenchRedis.start(logDirectory: work)
        defer { redis.terminate(grace: .seconds(2)) }
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        var result: [String: Any] = ["bench": "gateway"]
        if !skipMemory { result.merge(try await measureMemory(work: work, url: url, client: client)) { _, new in new } }
        if !skipIngest {
            _ = try await client.send("FLUSHDB")
            result.merge(try await measureIngest(work: work, redisURL: url, client: client)) { _, new in new }
        }
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
    }

    /// Peak RSS while `clients` uploads of large studies arrive at once.
    func measureMemory(work: String, url: String, client: RedisClient) async throws -> [String: Any] {
        let bin = ChildProcess.executableDirectory

        // One phantom series; each client's copy gets its own study, series and instance UIDs.
        let spec = PhantomSpec(kind: .chest, width: size, height: size, slices: images, pixelSpacing: 352.0 / Double(size), sliceSpacing: 300.0 / Double(images),
                               lesionDiameterMM: 0, seed: 4244)
        let series = try Phantom.generate(spec).dicomFiles().map { try DICOMFile.read($0).dataSet }
        var bodyBytes = 0
        for client in 0..<clients {
            let body = try Self.studyBody(series, study: "2.25.\(9_100_000 + client)", boundary: "radgrid-bench-\(client)")
            bodyBytes = body.count
            try Data(body).write(to: URL(fileURLWithPath: "\(work)/body-\(client).bin"))
        }

        // The gateway (defaults: 8 uploads at once, 4 per site).
        var tokens: [String] = []
        for site in 1...4 { tokens.append(try await SiteTokens(client: client, prefix: KeyPrefix("rg:")).issue(site: "H\(site)")) }
        let gatewayPort = ChildProcess.freePort()
        let gateway = try ChildProcess(executable: bin + "/radgrid", arguments: ["gateway", "--port", String(gatewayPort), "--redis", url, "--prefix", "rg:", "--stable-age", "3600"],
                                       outputPath: work + "/gateway.log")
        defer { gateway.terminate(grace: .seconds(2)) }
        try await Task.sleep(for: .seconds(1))
        let baseline = Self.memory(pid: gateway.pid)

        let started = Date()
        let contentType = MultipartWriter(boundary: "x").contentType
        let clients = clients
        let siteTokens = tokens
        let results = try await withThrowingTaskGroup(of: (attempts: Int, ok: Bool).self) { group in
            for n in 0..<clients {
                group.addTask {
                    var attempts = 0
                    while attempts < 200 {
                        attempts += 1
                        let out = "\(work)/curl-\(n).out"
                        let curl = try ChildProcess(executable: "/usr/bin/curl", arguments: [
                            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:", "-H", "Authorization: Bearer \(siteTokens[n % 4])",
                            "-H", "Content-Type: \(contentType.replacingOccurrences(of: "boundary=x", with: "boundary=radgrid-bench-\(n)"))",
                            "--data-binary", "@\(work)/body-\(n).bin", "http://127.0.0.1:\(gatewayPort)/studies",
                        ], outputPath: out)
                        _ = await curl.exit(timeout: .seconds(1800))
                        let code = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                        if code.hasSuffix("200") { return (attempts, true) }
                        // 429 (or the connection closed while refusing): wait as told and send again.
                        try await Task.sleep(for: .seconds(1))
                    }
                    return (attempts, false)
                }
            }
            var all: [(Int, Bool)] = []
            for try await result in group { all.append(result) }
            return all
        }
        let seconds = Date().timeIntervalSince(started)
        let peak = Self.memory(pid: gateway.pid)
        // The ingest comparison that follows needs neither this gateway nor the 200 MB bodies.
        gateway.terminate(grace: .seconds(2))
        for n in 0..<clients { try? FileManager.default.removeItem(atPath: "\(work)/body-\(n).bin") }
        guard results.allSatisfy(\.1) else { throw ValidationError("some uploads never succeeded; see \(work)/gateway.log") }
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        var stored = 0
        for n in 0..<clients { stored += try await store.record(try StudyUID("2.25.\(9_100_000 + n)"))?.instances ?? 0 }
        guard stored == clients * images else { throw ValidationError("the gateway stored \(stored) of \(clients * images) images") }
        let result: [String: Any] = [
            "clients": clients, "images_per_study": images, "study_mb": (Double(bodyBytes) / 1e5).rounded() / 10,
            "seconds": (seconds * 10).rounded() / 10, "images_per_s": (Double(stored) / seconds).rounded(),
            "mb_per_s": (Double(bodyBytes * clients) / 1e6 / seconds).rounded(),
            "peak_rss_mib": peak.peak / 1024, "idle_rss_mib": baseline.current / 1024,
            "retries": results.map(\.0).reduce(0, +) - clients,
        ]
        if !json {
            print(String(format: "%d clients × %.0f MB: %.1f s, %.0f images/s; gateway peak RSS %d MiB (idle %d MiB)", clients, Double(bodyBytes) / 1e6, seconds,
                         Double(stored) / seconds, peak.peak / 1024, baseline.current / 1024))
        }
        return result
    }

    /// VmRSS and VmHWM (peak) of a process, KiB.
    static func memory(pid: pid_t) -> (current: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func value(_ key: String) -> Int {
            status.split(separator: "\n").first { $0.hasPrefix(key) }.flatMap { Int($0.split(separator: " ").dropFirst().first { !$0.isEmpty }?.trimmingCharacters(in: .whitespaces) ?? "") } ?? 0
        }
        return (value("VmRSS:"), value("VmHWM:"))
    }

    /// One study as a STOW-RS body: `series` re-identified under `study` (its series and
    /// instances numbered from it), one part per instance.
    static func studyBody(_ series: [DataSet], study: String, boundary: String) throws -> [UInt8] {
        var writer = MultipartWriter(boundary: boundary)
        for (k, original) in series.enumerated() {
            var dataSet = original
            dataSet.set(.studyInstanceUID, study)
            dataSet.set(.seriesInstanceUID, "\(study).1")
            dataSet.set(.sopInstanceUID, "\(study).1.\(k + 1)")
            writer.append(try DICOMWriter.write(dataSet), contentType: "application/dicom")
        }
        return writer.finish()
    }
}
