import Audit
import Coordinator
import DICOM
import Foundation
import Gateway
import GridContract
import RadGridCore
import StudyLifecycle
import StudyStore
import Testing
import TestSupport

/// Every file of the reference corpus (real files from pydicom's test data: CT, MR, NM, RT
/// plans and doses, SRs, colour secondary captures, every compression) sent as its own study
/// through the gateway's intake: each ends `assigned`, `not-routable` with its reason, or is
/// refused at the door with its reason. None waits, none is quarantined for its syntax or kind.
@Suite("Corpus: every real file finds its reader", .serialized, .enabled(if: Corpus.isAvailable, "reference corpus not found (../shared/corpus)"))
struct CorpusStudiesTests {
    @Test func eachCorpusFileAsItsOwnStudy() async throws {
        let directory = try #require(Corpus.directory).appendingPathComponent("dicom")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".dcm") }.sorted()
        #expect(names.count >= 30)
        let grid = try await InProcessGrid(demoRoster: true)
        grid.startCoordinator()
        try grid.startWorker()
        let intake = InstanceIntake(store: grid.store)
        var studies: [String: StudyUID] = [:]
        var refused: [String: String] = [:]
        for (n, name) in names.enumerated() {
            let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
            // Its own study: new UIDs where the file can be read at all (the intake judges the rest).
            let study = "1.2.826.0.1.9000.\(n + 1)"
            let upload = (try? CoordinatorTests.rewrite(bytes, study: study, series: study + ".1", sop: study + ".1.1")) ?? bytes
            switch await intake.ingest(upload, site: try SiteID("H001"), priority: .routine, expectedStudy: nil) {
            case .stored(let header, _, _): studies[name] = header.study
            case .failed(_, _, let reason, let error):
                refused[name] = "\(String(reason.rawValue, radix: 16)) \(error.code)"
            }
        }
        for uid in studies.values {
            try await grid.store.handle(.commit(reason: "test"), study: uid, actor: AuditActor(.site, "H001"), machine: StudyStateMachine(settings: grid.settings.lifecycle))
        }
        // Settle: every study assigned or not-routable.
        var states: [String: StudyRecord] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            states = [:]
            for (name, uid) in studies { states[name] = try await grid.store.record(uid) }
            if states.values.allSatisfy({ $0.state == .assigned || $0.state == .notRoutable || $0.state == .quarantined || $0.state == .failed }) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        for name in names {
            if let reason = refused[name] {
                // Refused at the door, with a reason (files pydicom cannot read either, or undecodable).
                #expect(!reason.isEmpty)
                continue
            }
            let record = try #require(states[name], "\(name) has no study")
            #expect(record.state == .assigned || record.state == .notRoutable, "\(name) ended \(record.state.rawValue) \(record.failure?.code ?? "")")
            if record.state == .notRoutable { #expect(record.failure?.code == StudyFailure.noDiagnosticImages, "\(name)") }
        }
        // The corpus's structured report and RT plan are not-routable; its images are assigned.
        #expect(states["test-SR.dcm"]?.state == .notRoutable)
        #expect(states["rtplan.dcm"]?.state == .notRoutable)
        #expect(states["CT_small.dcm"]?.state == .assigned)
        #expect(states["JPEG2000.dcm"]?.state == .assigned)
        print("corpus studies: \(states.values.filter { $0.state == .assigned }.count) assigned, \(states.values.filter { $0.state == .notRoutable }.count) not-routable, \(refused.count) refused at the door: \(refused.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))")
        await grid.close()
    }
}
