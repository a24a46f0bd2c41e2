import ArgumentParser
import DICOM
import DICOMWeb
import Foundation
import GridContract
import RadGridCore
import RedisClient
import Screening
import StudyStore

/// The ingest half of `radgrid-bench gateway`: STOW-RS images/s of `radgrid gateway` (Redis,
/// no workers, no coordinator) and of Orthanc with its DICOMweb plugin, each receiving the
/// same multipart bodies from the same parallel curl clients in the same run.
///
/// Each round starts both servers empty (a flushed Redis and a new gateway process; a new
/// Orthanc in a new storage directory), so neither meets the other's UIDs as duplicates nor
/// a cache left by an earlier round. The order alternates between rounds, so a drift of the
/// machine's speed does not always favour the same side.
extension GatewayBench {
    /// Where the DICOMweb plugin of Debian's `orthanc-dicomweb` is installed.
    static let orthancDICOMwebPlugins = ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7"]

    /// One multipart body on disk: curl streams it (`-T`), so the clients hold no body in memory.
    struct IngestBody: Sendable {
        var path: String
        var contentType: String
        var study: String
    }

    func measureIngest(work: String, redisURL url: String, client: RedisClient) async throws -> [String: Any] {
        let clients = max(1, ingestClients), images = max(1, ingestImages), requests = max(clients, ingestRequests), rounds = max(1, ingestRounds)
        guard let plugin = Self.orthancDICOMwebPlugins.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ValidationError("Orthanc's DICOMweb plugin is missing: install the Debian package orthanc-dicomweb (scripts/deps.sh), or pass --skip-ingest")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/Orthanc") else { throw ValidationError("Orthanc is missing: install the Debian package orthanc, or pass --skip-ingest") }

        // One phantom series; every body is a study of its own (own study, series and
        // instance UIDs). The first `clients` bodies are the warm-up, one per client.
        let spec = PhantomSpec(kind: .chest, width: size, height: size, slices: images, pixelSpacing: 352.0 / Double(size), sliceSpacing: 300.0 / Double(images),
                               lesionDiameterMM: 0, seed: 4245)
        let series = try Phantom.generate(spec).dicomFiles().map { try DICOMFile.read($0).dataSet }
        var bodies: [IngestBody] = []
        var bodyBytes = 0
        for n in 0..<(clients + requests) {
            let study = "2.25.\(9_200_000 + n)", boundary = "radgrid-ingest-\(n)"
            let body = try GatewayBench.studyBody(series, study: study, boundary: boundary)
            if n >= clients { bodyBytes += body.count }
            let path = "\(work)/ingest-\(n).bin"
            try Data(body).write(to: URL(fileURLWithPath: path))
            bodies.append(IngestBody(path: path, contentType: MultipartWriter(boundary: boundary).contentType, study: study))
        }
        let warmUp = Array(bodies.prefix(clients)), measured = Array(bodies.dropFirst(clients))
        let expected = bodies.count * images

        var gatewayRates: [Double] = []
        var orthancRates: [Double] = []
        for round in 0..<rounds {
            for side in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let seconds: Double
                if side == 0 {
                    seconds = try await ingestIntoGateway(work: work, url: url, client: client, clients: clients, warmUp: warmUp, measured: measured, expected: expected, images: images)
                    gatewayRates.append(Double(measured.count * images) / seconds)
                } else {
                    seconds = try await ingestIntoOrthanc(work: work, plugin: plugin, clients: clients, warmUp: warmUp, measured: measured, expected: expected)
                    orthancRates.append(Double(measured.count * images) / seconds)
                }
                if !json {
                    print(String(format: "round %d: %@ %d images in %.2f s, %.0f images/s", round + 1, side == 0 ? "gateway" : "orthanc", measured.count * images, seconds,
                                 Double(measured.count * images) / seconds))
                }
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let gateway = median(gatewayRates), orthanc = median(orthancRates)
        if !json {
            print(String(format: "STOW-RS ingest, %d clients × %d requests of %d images (%.1f MB each): gateway %.0f images/s, Orthanc %.0f images/s: %.2f× Orthanc",
                         clients, requests, images, Double(bodyBytes) / Double(requests) / 1e6, gateway, orthanc, gateway / orthanc))
        }
        return [
            "ingest_clients": clients, "ingest_images_per_request": images, "ingest_requests": requests, "ingest_rounds": rounds,
            "ingest_request_mb": (Double(bodyBytes) / Double(requests) / 1e5).rounded() / 10,
            "ingest_images_per_s_gateway": gateway.rounded(), "ingest_images_per_s_orthanc": orthanc.rounded(),
            "ingest_ratio": (gateway / orthanc * 100).rounded() / 100,
            "ingest_rounds_gateway": gatewayRates.map { $0.rounded() }, "ingest_rounds_orthanc": orthancRates.map { $0.rounded() },
            // Each round's pair ran back to back: its ratio is the least disturbed by drift.
            "ingest_rounds_ratio": zip(gatewayRates, orthancRates).map { ($0 / $1 * 100).rounded() / 100 },
        ]
    }

    /// A fresh `radgrid gateway` over a flushed Redis: seconds for the measured bodies.
    private func ingestIntoGateway(work: String, url: String, client: RedisClient, clients: Int, warmUp: [IngestBody], measured: [IngestBody],
                                   expected: Int, images: Int) async throws -> Double {
        _ = try await client.send("FLUSHDB")
        let token = try await SiteTokens(client: client, prefix: KeyPrefix("rg:")).issue(site: "H1")
        let port = ChildProcess.freePort()
        // Every client's upload is taken at once (the defaults allow 8, 4 per site): a 429 retry would time the client, not the ingest.
        let gateway = try ChildProcess(executable: ChildProcess.executableDirectory + "/radgrid", arguments: [
            "gateway", "--port", String(port), "--redis", url, "--prefix", "rg:", "--stable-age", "3600",
            "--max-uploads", String(max(8, clients)), "--max-uploads-per-site", String(max(4, clients)),
        ], outputPath: work + "/ingest-gateway.log")
        defer { gateway.terminate(grace: .seconds(5)) }
        let base = "http://127.0.0.1:\(port)"
        try await Self.waitForHTTP(base + "/health", process: gateway, work: work, log: work + "/ingest-gateway.log")
        let seconds = try await Self.post(work: work, label: "gateway", url: base + "/studies", headers: ["Authorization: Bearer \(token)"],
                                          clients: clients, warmUp: warmUp, measured: measured)
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        var stored = 0
        for body in warmUp + measured { stored += try await store.record(try StudyUID(body.study))?.instances ?? 0 }
        guard stored == expected else { throw ValidationError("the gateway stored \(stored) of \(expected) images; see \(work)/ingest-gateway.log") }
        return seconds
    }

    /// A fresh Orthanc with the DICOMweb plugin and empty storage: seconds for the measured bodies.
    private func ingestIntoOrthanc(work: String, plugin: String, clients: Int, warmUp: [IngestBody], measured: [IngestBody], expected: Int) async throws -> Double {
        let root = work + "/orthanc"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let port = ChildProcess.freePort()
        // Orthanc's defaults otherwise (no storage compression, 50 HTTP threads); the
        // DICOM listener is off, as the grid's gateway has none here either.
        let settings: [String: Any] = [
            "Name": "RadGridBench", "StorageDirectory": root + "/storage", "IndexDirectory": root + "/index",
            "HttpPort": port, "DicomServerEnabled": false, "DicomPort": ChildProcess.freePort(),
            "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "SaveJobs": false,
            "Plugins": [plugin], "DicomWeb": ["Enable": true, "Root": "/dicom-web/"] as [String: Any],
        ]
        try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: root + "/orthanc.json"))
        let orthanc = try ChildProcess(executable: "/usr/sbin/Orthanc", arguments: ["--logfile=\(work)/orthanc.log", root + "/orthanc.json"], outputPath: work + "/orthanc.out")
        defer { orthanc.terminate(grace: .seconds(15)) }
        let base = "http://127.0.0.1:\(port)"
        try await Self.waitForHTTP(base + "/system", process: orthanc, work: work, log: work + "/orthanc.log")
        guard await Self.get(base + "/plugins/dicom-web", work: work).status == 200 else { throw ValidationError("Orthanc did not load \(plugin); see \(work)/orthanc.log") }
        let seconds = try await Self.post(work: work, label: "orthanc", url: base + "/dicom-web/studies", headers: [], clients: clients, warmUp: warmUp, measured: measured)
        let statistics = await Self.get(base + "/statistics", work: work)
        let count = ((try? JSONSerialization.jsonObject(with: statistics.body)) as? [String: Any])?["CountInstances"] as? Int ?? -1
        guard count == expected else { throw ValidationError("Orthanc stored \(count) of \(expected) images; see \(work)/orthanc.log") }
        return seconds
    }

    /// Warm-up (one body per client, not timed), then the measured bodies dealt round-robin to
    /// `clients` curl processes, each sending its share one after another on one connection.
    /// Seconds from the first measured request to the last answer.
    static func post(work: String, label: String, url: String, headers: [String], clients: Int, warmUp: [IngestBody], measured: [IngestBody]) async throws -> Double {
        func run(_ shares: [[IngestBody]], tag: String) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (n, share) in shares.enumerated() where !share.isEmpty {
                    group.addTask {
                        let out = "\(work)/curl-\(label)-\(tag)-\(n).out"
                        try? FileManager.default.removeItem(atPath: out)
                        var arguments: [String] = []
                        for (k, body) in share.enumerated() {
                            if k > 0 { arguments.append("--next") }
                            arguments += ["-s", "-o", "/dev/null", "-w", "%{http_code}\\n", "-X", "POST", "-T", body.path, "-H", "Expect:", "-H", "Content-Type: \(body.contentType)"]
                            for header in headers { arguments += ["-H", header] }
                            arguments.append(url)
                        }
                        let curl = try ChildProcess(executable: "/usr/bin/curl", arguments: arguments, outputPath: out)
                        guard await curl.exit(timeout: .seconds(1800)) == 0 else { throw ValidationError("curl to \(label) failed; see \(out)") }
                        let codes = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
                        guard codes.count == share.count, codes.allSatisfy({ $0 == "200" }) else {
                            throw ValidationError("\(label) answered \(codes.joined(separator: ",")) (expected \(share.count) × 200)")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await run(warmUp.map { [$0] }, tag: "warm")
        var shares = [[IngestBody]](repeating: [], count: clients)
        for (k, body) in measured.enumerated() { shares[k % clients].append(body) }
        let started = ContinuousClock.now
        try await run(shares, tag: "run")
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// A GET with curl: the status (0 when nothing answered) and the body.
    static func get(_ url: String, work: String) async -> (status: Int, body: Data) {
        let name = UUID().uuidString
        let out = "\(work)/get-\(name).out", bodyPath = "\(work)/get-\(name).body"
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: bodyPath)
        }
        guard let curl = try? ChildProcess(executable: "/usr/bin/curl", arguments: ["-s", "-m", "5", "-o", bodyPath, "-w", "%{http_code}", url], outputPath: out) else { return (0, Data()) }
        _ = await curl.exit(timeout: .seconds(10))
        let status = Int((try? String(contentsOfFile: out, encoding: .utf8)) ?? "") ?? 0
        return (status, (try? Data(contentsOf: URL(fileURLWithPath: bodyPath))) ?? Data())
    }

    /// Polls `url` until it answers 200; throws when the process exits or a minute passes.
    static func waitForHTTP(_ url: String, process: ChildProcess, work: String, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw ValidationError("\(process.name) exited before answering \(url); see \(log)") }
            if await get(url, work: work).status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("\(url) did not answer within 60 s; see \(log)")
    }
}
