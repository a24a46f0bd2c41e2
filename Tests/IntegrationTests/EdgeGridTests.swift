import DICOM
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import Screening
import StudyStore
import Testing
import TestSupport

/// The hospital edge in front of a real grid (`radgrid up`), reached through the WAN emulator
/// (Tests/Clients/wan_link.py): studies taken while the link is down arrive and are routed once
/// it is back; `kill -9` mid-forward loses and duplicates nothing; a full spool refuses cleanly.
@Suite(.serialized) struct EdgeGridTests {
    static let ctl = GridEndToEndTests.binDir + "/radgridctl"

    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func studiesTakenWhileTheLinkIsDownArriveAndAreRoutedWhenItIsBack() async throws {
        let (server, grid, work) = try await Self.startGrid("edge-down")
        defer { server.stop(); for child in grid.children { _ = child.process.signal(SIGKILL) }; try? FileManager.default.removeItem(atPath: work) }
        let link = try await WANLink.start(upstream: grid.gatewayURL, arguments: ["--latency-ms", "25"], log: work + "/link.log")
        defer { link.process.terminate(grace: .seconds(2)) }
        #expect(link.process.signal(SIGUSR1), "link down")
        let edge = try await EdgeProcess.start(upstream: link.url, token: grid.token, spool: work + "/spool", log: work + "/edge.log",
                                               extra: ["--allow-ae", "MODALITY", "--stable-age", "2"])
        defer { _ = edge.process.signal(SIGKILL) }

        // A modality stores a study over C-STORE; an unknown AE is turned away.
        let (dimseHost, dimsePort) = edge.dimse
        let first = try Self.phantom(seed: 601, slices: 4, in: work + "/a")
        let stored = try await DcmtkTool.run("storescu", ["-aet", "MODALITY", "-aec", "RADGRID-EDGE", "+sd", dimseHost, String(dimsePort), first])
        #expect(stored.status == 0, "\(stored.output)")
        let intruder = try await DcmtkTool.run("storescu", ["-aet", "INTRUDER", "-aec", "RADGRID-EDGE", "+sd", dimseHost, String(dimsePort), first])
        #expect(intruder.status != 0 && intruder.output.lowercased().contains("reject"), "\(intruder.output)")
        // A STAT study over STOW-RS, with the site's token (a wrong one is refused).
        let second = try Self.phantom(seed: 602, slices: 3, in: work + "/b")
        let files = try FileManager.default.contentsOfDirectory(atPath: second).sorted().map { try Data(contentsOf: URL(fileURLWithPath: second + "/" + $0)) }
        #expect(try await Self.stow(edge.url, token: "wrong", files: files, priority: "stat").status == 401)
        let stow = try await Self.stow(edge.url, token: grid.token, files: files, priority: "stat")
        #expect(stow.status == 200, "\(stow.body)")

        // Both wait in the spool; the centre has nothing; the status names the failing link.
        try await Task.sleep(for: .seconds(4))
        let waiting = try Self.edgeStatus(work + "/spool")
        // Waiting, or caught in a retry against the dead link at this instant.
        #expect((waiting["queued"] as? Int ?? 0) + (waiting["in_flight"] as? Int ?? 0) == 2 && waiting["forwarded"] as? Int == 0, "\(waiting)")
        #expect((waiting["oldest_s"] as? Double ?? 0) >= 3)
        #expect(((waiting["upstream"] as? [String: Any])?["last_error"] as? String)?.isEmpty == false, "\(waiting)")
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        #expect(try await store.allStudies().isEmpty)

        // The link comes back: both arrive, are committed by the edge and routed.
        #expect(link.process.signal(SIGUSR2), "link up")
        let records = try await Self.waitAssigned(store, count: 2, work: work)
        #expect(records.map(\.instances).sorted() == [3, 4], "\(records.map(\.instances))")
        #expect(records.contains { $0.priority == .stat })
        for record in records {
            #expect(try await store.audit(record.uid).entries().contains { $0.details.contains("explicit") }, "\(record.uid) was not committed by the edge")
        }
        let done = try Self.edgeStatus(work + "/spool")
        #expect(done["forwarded"] as? Int == 2 && done["queued"] as? Int == 0 && done["oldest_s"] as? Double == 0, "\(done)")
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
    }

    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func killingTheEdgeMidForwardLosesAndDuplicatesNothing() async throws {
        let (server, grid, work) = try await Self.startGrid("edge-kill")
        defer { server.stop(); for child in grid.children { _ = child.process.signal(SIGKILL) }; try? FileManager.default.removeItem(atPath: work) }
        // A slow link: the study takes several seconds to cross.
        let link = try await WANLink.start(upstream: grid.gatewayURL, arguments: ["--latency-ms", "25", "--mbps", "2"], log: work + "/link.log")
        defer { link.process.terminate(grace: .seconds(2)) }
        let arguments = ["--batch-mib", "1", "--parallel", "2"]
        var edge = try await EdgeProcess.start(upstream: link.url, token: grid.token, spool: work + "/spool", log: work + "/edge.log", extra: arguments)
        let slices = 40
        let folder = try Self.phantom(seed: 611, slices: slices, size: 256, in: work + "/a")
        let stored = try await DcmtkTool.run("storescu", ["-aet", "MODALITY", "-aec", "RADGRID-EDGE", "+sd", edge.dimse.host, String(edge.dimse.port), folder])
        #expect(stored.status == 0, "\(stored.output)")

        // Kill it once part of the study is forwarded.
        var partial: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            partial = try Self.edgeStatus(work + "/spool")
            let forwarded = (partial["instances"] as? [String: Any])?["forwarded"] as? Int ?? 0
            if forwarded > 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(edge.process.signal(SIGKILL))
        _ = edge.process.wait(timeout: .seconds(5))
        let afterKill = try Self.edgeStatus(work + "/spool")
        let counts = try #require(afterKill["instances"] as? [String: Int])
        #expect(counts["forwarded", default: 0] > 0 && counts["forwarded", default: 0] < slices, "kill came too late to test anything: \(afterKill)")
        #expect(counts.values.reduce(0, +) == slices, "every acknowledged instance is in the spool: \(afterKill)")

        // Restarted on the same spool, it finishes the study; the centre holds each instance once.
        edge = try await EdgeProcess.start(upstream: link.url, token: grid.token, spool: work + "/spool", log: work + "/edge2.log", extra: arguments)
        defer { _ = edge.process.signal(SIGKILL) }
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        let records = try await Self.waitAssigned(store, count: 1, work: work)
        #expect(records.first?.instances == slices && records.first?.lateInstances == 0, "\(records.map { ($0.instances, $0.lateInstances) })")
        let done = try Self.edgeStatus(work + "/spool")
        #expect((done["instances"] as? [String: Int])?["forwarded"] == slices && done["forwarded"] as? Int == 1, "\(done)")
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
    }

    @Test(.enabled(if: GridEndToEndTests.built, "radgrid and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func aFullSpoolRefusesCStoreWithA700AndStowWith503() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-edge-full-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // Nothing listens upstream: the spool only fills.
        let edge = try await EdgeProcess.start(upstream: "http://127.0.0.1:\(try freePort())", token: "site-token", spool: work + "/spool",
                                               log: work + "/edge.log", extra: ["--spool-limit-mib", "1"])
        defer { _ = edge.process.signal(SIGKILL) }
        let folder = try Self.phantom(seed: 621, slices: 4, size: 512, in: work + "/a")
        let result = try await DcmtkTool.run("storescu", ["-v", "-aet", "MODALITY", "-aec", "RADGRID-EDGE", "+sd", edge.dimse.host, String(edge.dimse.port), folder])
        #expect(result.output.contains("Refused: OutOfResources"), "\(result.output)")
        // Held: waiting, or being tried against the dead upstream.
        func held(_ status: [String: Any]) -> Int {
            let instances = status["instances"] as? [String: Int] ?? [:]
            return instances["queued", default: 0] + instances["in_flight", default: 0]
        }
        let status = try Self.edgeStatus(work + "/spool")
        let queued = held(status)
        #expect(queued >= 1 && queued < 4, "\(status) \(result.output)")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)) }
        let stow = try await Self.stow(edge.url, token: "site-token", files: [files[0], files[1], files[2]], priority: nil)
        #expect(stow.status == 503 && stow.retryAfter != nil, "\(stow.status) \(stow.body)")
        let after = try Self.edgeStatus(work + "/spool")
        #expect(held(after) == queued && after["spool_bytes"] as? Int == status["spool_bytes"] as? Int, "a refusal keeps nothing: \(after)")
    }

    /// HTTPS to the centre through stunnel (Debian's `stunnel4` terminating TLS in front of the
    /// gateway, as docs/OPERATIONS.md sets it up), with a private CA and client certificates:
    /// without its certificate the edge keeps the study and says why; with it, the study arrives.
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func theEdgeReachesTheCentreOverMutualTLS() async throws {
        let (server, grid, work) = try await Self.startGrid("edge-tls")
        defer { server.stop(); for child in grid.children { _ = child.process.signal(SIGKILL) }; try? FileManager.default.removeItem(atPath: work) }
        let pki = try await TestPKI.make(in: work + "/pki")
        let port = try freePort()
        let config = """
            foreground = yes
            pid =
            [gateway]
            accept = 127.0.0.1:\(port)
            connect = \(grid.gatewayURL.replacingOccurrences(of: "http://", with: ""))
            cert = \(pki.serverCertificate)
            key = \(pki.serverKey)
            CAfile = \(pki.ca)
            verifyChain = yes
            sslVersionMin = TLSv1.2
            """
        let stunnel = try await StunnelProcess.start(config: config, at: work + "/stunnel.conf", listeningOn: port, log: work + "/stunnel.log")
        defer { stunnel.stop() }

        let upstream = "https://127.0.0.1:\(port)"
        var edge = try await EdgeProcess.start(upstream: upstream, token: grid.token, spool: work + "/spool", log: work + "/edge.log",
                                               extra: ["--ca-file", pki.ca])
        let folder = try Self.phantom(seed: 631, slices: 3, in: work + "/a")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)) }
        let stow = try await Self.stow(edge.url, token: grid.token, files: files, priority: nil)
        #expect(stow.status == 200)
        let study = try #require(try DICOMFile.readHeader(Array(files[0])).dataSet.string(.studyInstanceUID))
        #expect(try await Self.commit(edge.url, token: grid.token, study: study) == 200)
        try await Task.sleep(for: .seconds(3))
        let refused = try Self.edgeStatus(work + "/spool")
        #expect((refused["queued"] as? Int ?? 0) + (refused["in_flight"] as? Int ?? 0) == 1 && refused["forwarded"] as? Int == 0
                && ((refused["upstream"] as? [String: Any])?["last_error"] as? String)?.isEmpty == false, "\(refused)")
        _ = edge.process.signal(SIGKILL)
        _ = edge.process.wait(timeout: .seconds(5))

        edge = try await EdgeProcess.start(upstream: upstream, token: grid.token, spool: work + "/spool", log: work + "/edge2.log",
                                           extra: ["--ca-file", pki.ca, "--client-cert", pki.clientCertificate, "--client-key", pki.clientKey])
        defer { _ = edge.process.signal(SIGKILL) }
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let records = try await Self.waitAssigned(StudyStore(client: client, prefix: KeyPrefix("rg:")), count: 1, work: work)
        #expect(records.first?.uid.rawValue == study && records.first?.instances == 3)
        // The edge's own metrics say what it did.
        let (metrics, _) = try await URLSession.shared.data(from: URL(string: edge.url + "/metrics")!)
        #expect(String(decoding: metrics, as: UTF8.self).contains("radgrid_edge_instances_forwarded_total 3"))
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
    }

    /// The gateway's own HTTPS with client certificates (`--tls-cert --tls-key --tls-client-ca`):
    /// a client without a certificate is refused at the handshake; the edge with one delivers.
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func theGatewayServesHTTPSAndRequiresClientCertificates() async throws {
        let (server, grid, work) = try await Self.startGrid("gateway-tls")
        defer { server.stop(); for child in grid.children { _ = child.process.signal(SIGKILL) }; try? FileManager.default.removeItem(atPath: work) }
        let pki = try await TestPKI.make(in: work + "/pki")
        let port = try freePort()
        let gateway = try ChildProcess(executable: GridEndToEndTests.binDir + "/radgrid",
                                       arguments: ["gateway", "--port", String(port), "--redis", server.url, "--prefix", "rg:", "--stable-age", "120",
                                                   "--tls-cert", pki.serverCertificate, "--tls-key", pki.serverKey, "--tls-client-ca", pki.ca],
                                       outputPath: work + "/gateway-tls.log")
        defer { gateway.terminate(grace: .seconds(2)) }
        let upstream = "https://127.0.0.1:\(port)"
        for _ in 0..<100 where !((try? String(contentsOfFile: work + "/gateway-tls.log", encoding: .utf8)) ?? "").contains("listening on https://") {
            try await Task.sleep(for: .milliseconds(100))
        }
        let anonymous = try Self.curl(["-s", "-S", "--cacert", pki.ca, upstream + "/health"])
        #expect(anonymous.status != 0, "a client without a certificate got through: \(anonymous.output)")
        let identified = try Self.curl(["-s", "-S", "--cacert", pki.ca, "--cert", pki.clientCertificate, "--key", pki.clientKey, upstream + "/health"])
        #expect(identified.status == 0 && identified.output.contains("ok"), "\(identified.output)")

        let edge = try await EdgeProcess.start(upstream: upstream, token: grid.token, spool: work + "/spool", log: work + "/edge.log",
                                               extra: ["--ca-file", pki.ca, "--client-cert", pki.clientCertificate, "--client-key", pki.clientKey])
        defer { _ = edge.process.signal(SIGKILL) }
        let folder = try Self.phantom(seed: 651, slices: 3, in: work + "/a")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)) }
        #expect(try await Self.stow(edge.url, token: grid.token, files: files, priority: nil).status == 200)
        let study = try #require(try DICOMFile.readHeader(Array(files[0])).dataSet.string(.studyInstanceUID))
        #expect(try await Self.commit(edge.url, token: grid.token, study: study) == 200)
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let records = try await Self.waitAssigned(StudyStore(client: client, prefix: KeyPrefix("rg:")), count: 1, work: work)
        #expect(records.first?.instances == 3)
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
    }

    // MARK: Helpers

    static func curl(_ arguments: [String]) throws -> (status: Int32?, output: String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = try ChildProcess(executable: "/usr/bin/curl", arguments: arguments, outputPath: out)
        let status = process.wait(timeout: .seconds(30))
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    static func commit(_ base: String, token: String, study: String) async throws -> Int {
        var request = URLRequest(url: URL(string: base + "/studies/\(study)/commit")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    static func startGrid(_ name: String) async throws -> (RedisTestServer, LocalGrid, String) {
        let server = try await RedisTestServer.start()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-\(name)-\(UUID().uuidString)").path
        var options = LocalGrid.Options(directory: work + "/grid")
        options.redisURL = server.url
        options.prefix = KeyPrefix("rg:")
        options.workers = 1
        options.experts = 600
        // Far off: the edge's commit is what commits.
        options.stableAge = 120
        options.binDirectory = GridEndToEndTests.binDir
        let grid = LocalGrid(options: options)
        try await grid.start()
        return (server, grid, work)
    }

    static func phantom(seed: UInt64, slices: Int, size: Int = 64, in dir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var spec = PhantomSpec.small(.head, seed: seed)
        spec.slices = slices
        spec.width = size
        spec.height = size
        for (k, bytes) in try Phantom.generate(spec).dicomFiles().enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(k).dcm")) }
        return dir
    }

    static func edgeStatus(_ spool: String) throws -> [String: Any] {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("edge-status-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = try ChildProcess(executable: ctl, arguments: ["edge", "status", "--spool", spool, "--json"], outputPath: out)
        guard process.wait(timeout: .seconds(20)) == 0 else { throw TestSupportError("radgridctl edge status failed: \((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")") }
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let line = text.split(separator: "\n").last { $0.hasPrefix("{") } ?? ""
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
    }

    static func stow(_ base: String, token: String, files: [Data], priority: String?) async throws -> (status: Int, body: String, retryAfter: String?) {
        let boundary = "edge-test-\(UUID().uuidString)"
        var body = Data()
        for file in files {
            body.append(Data("--\(boundary)\r\nContent-Type: application/dicom\r\n\r\n".utf8))
            body.append(file)
            body.append(Data("\r\n".utf8))
        }
        body.append(Data("--\(boundary)--\r\n".utf8))
        var request = URLRequest(url: URL(string: base + "/studies" + (priority.map { "?priority=\($0)" } ?? ""))!)
        request.httpMethod = "POST"
        request.setValue("multipart/related; type=\"application/dicom\"; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.upload(for: request, from: body)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), http?.value(forHTTPHeaderField: "Retry-After"))
    }

    static func waitAssigned(_ store: StudyStore, count: Int, work: String) async throws -> [StudyRecord] {
        var records: [StudyRecord] = []
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            records = []
            for uid in try await store.allStudies() { if let record = try await store.record(uid) { records.append(record) } }
            if records.count == count, records.allSatisfy({ $0.state == .assigned }) { return records }
            try await Task.sleep(for: .milliseconds(300))
        }
        Issue.record("studies not routed: \(records.map { "\($0.uid)=\($0.state.rawValue)/\($0.instances)" }); logs in \(work)")
        return records
    }
}

/// `radgrid edge` as a child process on free ports, with the addresses it printed.
struct EdgeProcess {
    let process: ChildProcess
    let url: String
    let dimse: (host: String, port: Int)

    static func start(upstream: String, token: String, spool: String, log: String, extra: [String]) async throws -> EdgeProcess {
        let process = try ChildProcess(executable: GridEndToEndTests.binDir + "/radgrid",
                                       arguments: ["edge", "--upstream", upstream, "--token", token, "--spool", spool, "--host", "127.0.0.1",
                                                   "--port", "0", "--dimse-port", "0"] + extra, outputPath: log)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let http = text.components(separatedBy: "listening on http://").dropFirst().first?.split(separator: "\n").first
            let dicom = text.components(separatedBy: "listening on dicom://").dropFirst().first?.split(separator: "\n").first
            if let http, let dicom, let port = Int(dicom.split(separator: ":").last ?? "") {
                return EdgeProcess(process: process, url: "http://\(http)", dimse: (String(dicom.split(separator: ":").first ?? ""), port))
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        _ = process.signal(SIGKILL)
        throw TestSupportError("radgrid edge did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
}

/// The WAN emulator (Tests/Clients/wan_link.py) in front of an HTTP upstream.
struct WANLink {
    let process: ChildProcess
    let url: String

    static func start(upstream: String, arguments: [String], log: String) async throws -> WANLink {
        let target = upstream.replacingOccurrences(of: "http://", with: "")
        let script = Corpus.packageRoot.appendingPathComponent("Tests/Clients/wan_link.py").path
        let process = try ChildProcess(executable: "/usr/bin/python3", arguments: ["-u", script, "--upstream", target] + arguments, outputPath: log)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let address = text.components(separatedBy: "listening on ").dropFirst().first?.split(separator: "\n").first {
                return WANLink(process: process, url: "http://\(address)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = process.signal(SIGKILL)
        throw TestSupportError("the WAN emulator did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
}
