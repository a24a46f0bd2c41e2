import Accounts
import Audit
import CriticalResults
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Gateway
import GridContract
import Imaging
import Logging
import Portal
import RadGridCore
import Screening
import ServiceLifecycle
import StudyLifecycle
import StudyStore
import Testing
import TestSupport

/// Where critical results come from, through the real pipeline: the coordinator raises one for
/// an AI critical finding on a STAT case (real screening of a phantom with a bleed), the portal
/// raises one when an expert signs a final report marked critical (real HTTP, real sign-in).
@Suite("Critical results: raised by the coordinator and by the portal", .serialized)
struct CriticalResultsHookTests {
    func submit(_ grid: InProcessGrid, lesionMM: Double, seed: UInt64) async throws -> StudyUID {
        var spec = PhantomSpec.small(.head, lesionMM: lesionMM, seed: seed)
        spec.slices = 6
        let intake = InstanceIntake(store: grid.store)
        var uid: StudyUID?
        for bytes in try Phantom.generate(spec).dicomFiles() {
            switch await intake.ingest(bytes, site: try SiteID("H001"), priority: .routine, expectedStudy: nil) {
            case .stored(let header, _, _): uid = header.study
            case .failed(_, _, _, let error): throw error
            }
        }
        let study = try #require(uid)
        try await grid.store.handle(.commit(reason: "test"), study: study, actor: AuditActor(.admin, "test"), machine: StudyStateMachine(settings: grid.settings.lifecycle))
        return study
    }

    @Test func anAICriticalStatCaseAndASignedCriticalReportEachRaiseOne() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        try grid.startWorker()
        let bleed = try await submit(grid, lesionMM: 16, seed: 7100)
        let plain = try await grid.submit(seed: 43, slices: 6)
        let record = try await grid.wait(bleed, for: .assigned)
        let plainRecord = try await grid.wait(plain, for: .assigned)
        let critical = CriticalResultStore(client: grid.client, prefix: grid.prefix)

        // The coordinator's hook: screened critical, routed STAT -> one `ai` result for the site.
        try #require(record.screening?.urgency == .critical, "the phantom's bleed was not flagged critical by the screeners")
        #expect(record.route?.priority == .stat)
        let raised = try await critical.results(study: bleed)
        #expect(raised.map(\.source) == [.ai])
        #expect(raised.first?.site.rawValue == "H001" && raised.first?.priority == .stat && raised.first?.caseID == record.caseID)
        if plainRecord.screening?.urgency != .critical {
            #expect(try await critical.results(study: plain).isEmpty, "no critical finding, no critical result")
        }

        // The portal's hook: the holder signs a final report marked critical.
        let caseID = try #require(record.caseID), expert = try #require(record.expert)
        try await grid.router.accept(caseID: caseID.rawValue, expert: expert.rawValue)
        var settings = AccountSettings()
        settings.bcryptCost = 4
        try await AccountStore(client: grid.client, prefix: grid.prefix, settings: settings)
            .setPassword(user: expert.rawValue, role: .expert, expert: expert.rawValue, password: "pw-critical-hook-test", by: "admin:test")
        var configuration = PortalConfiguration()
        configuration.port = 0
        configuration.accounts = settings
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let services = try PortalApplication.services(client: grid.client, prefix: grid.prefix, configuration: configuration,
                                                      logger: Logger(label: "test.portal")) { continuation.yield($0) }
        let group = ServiceGroup(services: services, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let portal = "http://127.0.0.1:\(port)"
            let token = try await PortalEndToEndTests.login(portal, expert.rawValue, "pw-critical-hook-test")
            let report: [String: Any] = ["findings": "16 mm hyperdensity", "impression": "Acute haemorrhage likely.", "critical": true, "final": true]
            let signed = try await PortalEndToEndTests.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: token, json: report)
            #expect(signed.status == 200, "\(String(decoding: signed.body, as: UTF8.self))")
            // The same signature again (the portal refuses it once the case is closed): nothing more is raised.
            _ = try await PortalEndToEndTests.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: token, json: report)
            let results = try await critical.results(study: bleed)
            #expect(Set(results.map(\.source)) == [.ai, .report])
            let fromReport = try #require(results.first { $0.source == .report })
            #expect(fromReport.state == .notifying && fromReport.site.rawValue == "H001")
            let entries = try await AuditTrail(client: grid.client, prefix: grid.prefix, chain: CriticalResultKeys.auditChain).entries()
            let raisedEntries = entries.filter { $0.action == "critical.raised" && $0.study == bleed.rawValue }
            #expect(raisedEntries.count == 2)
            #expect(raisedEntries.contains { $0.actor == "expert:\(expert)" && $0.details.contains("source=report") })
            #expect(raisedEntries.contains { $0.actor.hasPrefix("coordinator:") && $0.details.contains("source=ai") })
            #expect(!raisedEntries.contains { $0.details.contains("haemorrhage") })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await grid.close()
    }
}
