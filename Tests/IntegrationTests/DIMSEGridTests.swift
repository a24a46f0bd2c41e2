import Audit
import DIMSE
import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import Routing
import Screening
import StudyStore
import Testing
import TestSupport

/// The grid as `radgrid up` runs it, fed over DICOM networking by real peers: dcmtk's storescu
/// and Orthanc pushing through its REST API to the grid as a modality. Both studies must be
/// committed by association release (stable age is set far off) and routed; the pre-screens
/// and the signed report must reach dcmtk's storescp playing the hospital's PACS.
@Suite(.serialized) struct DIMSEGridTests {
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func storescuAndOrthancPushStudiesThatAreRoutedAndResultsReachThePACS() async throws {
        let server = try await RedisTestServer.start()
        defer { server.stop() }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-dimse-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        var options = LocalGrid.Options(directory: work + "/grid")
        options.redisURL = server.url
        options.prefix = KeyPrefix("rg:")
        options.workers = 1
        options.experts = 600
        // Far off: only the association release can commit within the test's deadline.
        options.stableAge = 120
        options.binDirectory = GridEndToEndTests.binDir
        let grid = LocalGrid(options: options)
        try await grid.start()
        defer { for child in grid.children { _ = child.process.signal(SIGKILL) } }
        let env = try String(contentsOfFile: grid.envFile, encoding: .utf8)
        #expect(env.contains("RADGRID_DIMSE=\(grid.dimseAddress)\n"))
        let parts = grid.dimseAddress.split(separator: ":")
        let (host, port) = (String(parts[0]), try #require(Int(parts[1])))

        // The hospital's PACS, registered through the CLI.
        let pacs = try await StoreSCP.start(aeTitle: "HOSPPACS")
        let ctl = GridEndToEndTests.binDir + "/radgridctl"
        let common = ["--redis", server.url, "--prefix", "rg:"]
        let setPACS = try ChildProcess(executable: ctl, arguments: ["sites", "pacs", "H001", "--ae", "HOSPPACS", "--host", "127.0.0.1", "--port", String(pacs.port)] + common,
                                       outputPath: work + "/ctl.log")
        #expect(setPACS.wait(timeout: .seconds(20)) == 0)

        // 1. storescu sends a folder as AE H001 (radgrid up registered it from 127.0.0.1).
        let first = try Self.phantom(seed: 501, in: work + "/a")
        let stored = try await DcmtkTool.run("storescu", ["-aet", "H001", "-aec", "RADGRID", "+sd", host, String(port), first])
        #expect(stored.status == 0, "\(stored.output)")

        // 2. Orthanc, with the grid as a modality, pushes a study it holds.
        let addOrthanc = try ChildProcess(executable: ctl, arguments: ["sites", "dicom", "H001", "--ae", "ORTHANC", "--from", "127.0.0.1"] + common,
                                          outputPath: work + "/ctl.log")
        #expect(addOrthanc.wait(timeout: .seconds(20)) == 0)
        let orthanc = try await OrthancPeer.start(aeTitle: "ORTHANC", modalities: ["radgrid": (aeTitle: "RADGRID", host: host, port: port)])
        #expect(try await orthanc.echo("radgrid"))
        let second = try Self.phantom(seed: 502, in: work + "/b")
        for file in try FileManager.default.contentsOfDirectory(atPath: second) { _ = try await orthanc.upload(URL(fileURLWithPath: second + "/" + file)) }
        let answer = try await orthanc.storeToModality("radgrid", resources: try await orthanc.studies())
        #expect((answer["FailedInstancesCount"] as? Int) == 0, "\(answer)")

        // Both studies committed by release and routed to an expert.
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let store = StudyStore(client: client, prefix: KeyPrefix("rg:"))
        var records: [StudyRecord] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            records = []
            for uid in try await store.allStudies() { if let record = try await store.record(uid) { records.append(record) } }
            if records.count == 2, records.allSatisfy({ $0.state == .assigned }) { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(records.count == 2 && records.allSatisfy { $0.state == .assigned }, "\(records.map { "\($0.uid)=\($0.state.rawValue)" }); logs in \(work)/grid/logs")
        for record in records {
            let entries = try await store.audit(record.uid).entries()
            #expect(entries.contains { $0.details.contains("association-release") }, "\(record.uid) was not committed by release")
        }

        // Each study's pre-screen reaches the PACS as a Basic Text SR.
        let screenings: [URL]
        do {
            screenings = try await pacs.waitForFiles(count: 2, timeout: .seconds(60))
        } catch {
            // Say what Redis refused the DICOM gateway, if that is why nothing was sent.
            Issue.record("ACL denials: \(try await grid.aclDenials()); dimse log: \(String((try? String(contentsOfFile: work + "/grid/logs/dimse.log", encoding: .utf8))?.suffix(1500) ?? ""))")
            throw error
        }
        for file in screenings {
            let meta = try Part10.meta(of: Array(try Data(contentsOf: file)))
            #expect(meta.sopClassUID == StorageSOPClasses.basicTextSR)
        }

        // The expert accepts, signs; the report reaches the PACS too.
        let record = try #require(records.first)
        let router = ExpertRouter(redis: client, prefix: KeyPrefix("rg:"), actor: "test")
        let caseID = try #require(record.caseID).rawValue
        let expert = try #require(try await router.caseInfo(caseID)?.expert)
        try await router.accept(caseID: caseID, expert: expert)
        var report = StudyReport(study: record.uid.rawValue, caseID: caseID, status: .final, findings: "No acute intracranial finding.",
                                 impression: "Normal head CT.", critical: false, author: expert, authorName: "Test Reader",
                                 updatedMs: WallClock.nowMilliseconds(), signedMs: WallClock.nowMilliseconds())
        report.srSeriesUID = "2.25.1234567890"
        report.srInstanceUID = "2.25.1234567891"
        _ = try await store.writeReport(report, operation: .final, actor: AuditActor(.expert, expert))
        try await router.complete(caseID: caseID, expert: expert, reportReference: report.hash)
        let all = try await pacs.waitForFiles(count: 3, timeout: .seconds(60))
        let reports = try all.filter { try Part10.meta(of: Array(try Data(contentsOf: $0))).sopInstanceUID == "2.25.1234567891" }
        #expect(reports.count == 1, "the signed report did not reach the PACS; logs in \(work)/grid/logs")
        let trail = try await store.audit(record.uid).entries()
        #expect(trail.contains { $0.action == "result.sent" && $0.details.contains("kind=report") })
        orthanc.stop()
        pacs.stop()
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
    }

    static func phantom(seed: UInt64, in dir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var spec = PhantomSpec.small(.head, seed: seed)
        spec.slices = 4
        for (k, bytes) in try Phantom.generate(spec).dicomFiles().enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(k).dcm")) }
        return dir
    }
}
