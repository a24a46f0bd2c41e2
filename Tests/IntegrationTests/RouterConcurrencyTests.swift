import Foundation
import GridContract
import RadGridCore
import RedisClient
import Routing
import Synchronization
import Testing
import TestSupport

/// Several `radgrid router` processes share one Redis; the test plays the experts.
/// Afterwards the audit stream is replayed against an independent model of the roster:
/// nobody above capacity (beyond the STAT margin), no case held twice, no ineligible offer.
@Suite(.serialized) struct RouterConcurrencyTests {
    static var binDir: String {
        ProcessInfo.processInfo.environment["RADGRID_BIN_DIR"] ?? Corpus.packageRoot.appendingPathComponent(".build/debug").path
    }
    static var routerBinary: String { binDir + "/radgrid" }
    static var built: Bool { FileManager.default.isExecutableFile(atPath: routerBinary) }
    static var soak: Bool { ProcessInfo.processInfo.environment["RADGRID_SOAK"] == "1" }

    static let specialties = ["CT/head/neuro", "MR/msk", "CR/chest", "CT/abdomen/body"]
    static let sites = ["H1", "H2", "H3", "H4"]
    static func region(_ site: String) -> String { site == "H1" || site == "H2" ? "R1" : "R2" }

    /// 40 experts: every specialty at every site is covered several times; some are
    /// home-site conflicted, some hold a region credential, four lose a credential mid-run.
    static func roster(start: Int64) -> [Expert] {
        (0..<40).map { i in
            let s = i % 4, k = i / 4
            var credentials = [Credential(scope: sites[k % 4]), Credential(scope: sites[(k + 1) % 4])]
            if k == 1 { credentials[0].expires = start + 3_000 }
            if k == 9 { credentials = [Credential(scope: "region:R1")] }
            let home: String? = k % 5 == 0 ? sites[k % 4] : (k == 9 ? nil : sites[(k + 2) % 4])
            var specialties = [try! Specialty(Self.specialties[s])]
            if k % 3 == 0 { specialties.append(try! Specialty(Self.specialties[(s + 1) % 4])) }
            return Expert(id: "X\(i)", name: "Dr. X\(i)", specialties: specialties, credentials: credentials,
                          capacity: 6 + (i * 7) % 9, timeZone: "UTC", homeSite: home, licence: Licence(number: "L-1"), practiceSince: 0)
        }
    }

    @Test(.enabled(if: built, "radgrid is not built (swift build --product radgrid, or set RADGRID_BIN_DIR)"))
    func routersInParallelKeepEveryInvariant() async throws {
        let caseCount = Self.soak ? 6000 : 1000
        let url = try await TestRedis.url()
        let prefix = TestRedis.uniquePrefix("rc")
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        var config = RoutingConfig.standard
        // Long enough for the simulated experts to answer on a loaded machine (a shorter one
        // times out every offer and excludes every eligible expert), short enough that the
        // offers they ignore on purpose time out within the test.
        // The soak run answers 6,000 cases from one loop: under load its answers can come
        // late enough to time out every eligible expert of a case, which then (as specified)
        // waits for its SLA escalation, far beyond the test's window.
        config.acceptTimeoutSeconds = Self.soak ? 15 : 5
        let router = ExpertRouter(redis: client, prefix: KeyPrefix(prefix), config: config, actor: "test")
        let start = WallClock.nowMilliseconds()
        let experts = Self.roster(start: start)
        try await router.upsertExperts(experts, presence: .online, heartbeatUntil: start + 3_600_000)

        let configPath = FileManager.default.temporaryDirectory.appendingPathComponent("routing-\(UUID().uuidString).json").path
        try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: configPath))
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("routers-\(UUID().uuidString).log").path
        let routers = try (1...3).map { n in
            try ChildProcess(executable: Self.routerBinary, arguments: ["router", "--redis", url, "--prefix", prefix, "--config", configPath, "--name", "r\(n)"],
                             outputPath: logPath)
        }
        defer { for process in routers { process.terminate(grace: .seconds(5)) } }

        // Cases arrive on the intake stream, as the coordinator will publish them.
        for index in 0..<caseCount {
            let site = Self.sites[index % 4]
            let priority: Priority = index % 10 == 0 ? .stat : (index % 4 == 0 ? .urgent : .routine)
            try await router.enqueueCase(CaseRequest(id: "K\(index)", specialty: try Specialty(Self.specialties[(index / 4) % 4]), site: site,
                                                     region: Self.region(site), priority: priority, weight: 1 + index % 4))
        }

        // Experts: read offers from the audit stream; decline some, ignore a few (accept
        // timeout), accept and complete the rest.
        let audit = client.dedicatedConnection(name: "test-audit")
        defer { audit.close() }
        var lastID = "0-0"
        var completed = Set<String>()
        let deadline = ContinuousClock.now + .seconds(Self.soak ? 300 : 120)  // ends as soon as all complete
        var decisions = 0
        while completed.count < caseCount && ContinuousClock.now < deadline {
            let reply = try await audit.send(["XREAD", "COUNT", "500", "BLOCK", "200", "STREAMS", RedisArgument(router.keys.audit), RedisArgument(lastID)],
                                             blockingFor: .milliseconds(200))
            var offers: [(String, String, Int)] = []
            for stream in reply.array ?? [] {
                for entry in stream.array?[1].array ?? [] {
                    guard let pair = entry.array, let id = pair[0].string, let map = pair[1].fieldMap else { continue }
                    lastID = id
                    let action = map["action"]?.string ?? ""
                    let caseID = map["case"]?.string ?? ""
                    if action == "offer", let details = map["details"]?.string {
                        let expert = details.split(separator: ";").first { $0.hasPrefix("expert=") }.map { String($0.dropFirst(7)) } ?? ""
                        offers.append((caseID, expert, decisions))
                        decisions += 1
                    } else if action == "complete" {
                        completed.insert(caseID)
                    }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (caseID, expert, n) in offers {
                    group.addTask {
                        do {
                            let info = try await router.caseInfo(caseID)
                            let firstOffers = (info?.offers ?? 1) <= 2
                            if n % 23 == 5 && firstOffers {
                                _ = try await router.decline(caseID: caseID, expert: expert, reason: .workload)
                            } else if n % 31 == 7 && firstOffers {
                                return // ignored: the routers time the offer out
                            } else {
                                try await router.accept(caseID: caseID, expert: expert)
                                try await router.complete(caseID: caseID, expert: expert, reportReference: "R-\(caseID)")
                            }
                        } catch let error as RoutingError where error.code == "routing.notHolder" || error.code == "routing.state" {
                            // Lost a race with a timeout: the case went elsewhere.
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        var stuck: [String] = []
        for index in 0..<caseCount where !completed.contains("K\(index)") {
            if let info = try await router.caseInfo("K\(index)") {
                stuck.append("K\(index) state=\(info.state) expert=\(info.expert ?? "-") excluded=\(info.excluded) offers=\(info.offers) declines=\(info.declines)")
            }
        }
        #expect(completed.count == caseCount, "only \(completed.count) of \(caseCount) cases completed in time (log: \(logPath)); stuck: \(stuck.prefix(5))")

        for process in routers {
            process.terminate(grace: .seconds(10))
            #expect(process.exitCode == 0, "router did not shut down gracefully (log: \(logPath))")
        }

        // Replay the audit trail against an independent model.
        let entries = try await router.allAuditEntries()
        let byID = Dictionary(uniqueKeysWithValues: experts.map { ($0.id, $0) })
        var load: [String: Int] = [:]
        var holder: [String: String] = [:]
        var excluded: [String: Set<String>] = [:]
        var caseSite: [String: String] = [:]
        var caseSpec: [String: Specialty] = [:]
        var violations: [String] = []
        var offerCount = 0, declineCount = 0, timeoutCount = 0, completeCount: [String: Int] = [:]
        var expiredUsedAfterExpiry = 0
        for entry in entries {
            let d = entry.details
            switch entry.action {
            case "submit":
                caseSite[entry.caseID] = d["site"]
                caseSpec[entry.caseID] = try Specialty(d["spec"] ?? "")
            case "offer":
                offerCount += 1
                let expertID = d["expert"] ?? ""
                let weight = Int(d["weight"] ?? "") ?? 0
                let level = Int(d["level"] ?? "") ?? 0
                guard let expert = byID[expertID], let site = caseSite[entry.caseID], let spec = caseSpec[entry.caseID] else {
                    violations.append("offer of \(entry.caseID) to unknown \(expertID)"); continue
                }
                if let current = holder[entry.caseID] { violations.append("\(entry.caseID) offered to \(expertID) while held by \(current)") }
                let limit = d["eprio"] == "0" ? Double(expert.capacity) * 1.25 : Double(expert.capacity)
                if Double(load[expertID, default: 0] + weight) > limit + 1e-9 {
                    violations.append("\(expertID) over capacity: \(load[expertID, default: 0]) + \(weight) > \(limit)")
                }
                if !expert.qualifies(for: spec.widened(to: level)) { violations.append("\(expertID) lacks \(spec.widened(to: level)) for \(entry.caseID)") }
                let scopes = [site, "region:" + Self.region(site)]
                if !expert.credentials.contains(where: { scopes.contains($0.scope) && $0.isValid(at: entry.time) }) {
                    violations.append("\(expertID) not credentialed for \(site) at \(entry.time)")
                }
                if expert.credentials.contains(where: { $0.expires != nil && scopes.contains($0.scope) }) && entry.time >= start + 3_000 { expiredUsedAfterExpiry += 1 }
                if expert.homeSite == site { violations.append("\(expertID) got a case from home site \(site)") }
                if excluded[entry.caseID, default: []].contains(expertID) { violations.append("\(entry.caseID) offered again to \(expertID) after decline/timeout") }
                holder[entry.caseID] = expertID
                load[expertID, default: 0] += weight
            case "decline", "release", "accept_timeout", "complete", "cancel":
                let expertID = d["expert"] ?? ""
                let weight = Int(d["weight"] ?? "") ?? 0
                if holder[entry.caseID] != expertID { violations.append("\(entry.action) of \(entry.caseID) by \(expertID), holder \(holder[entry.caseID] ?? "none")") }
                holder[entry.caseID] = nil
                load[expertID, default: 0] -= weight
                if entry.action == "complete" { completeCount[entry.caseID, default: 0] += 1 }
                if entry.action == "decline" { declineCount += 1; excluded[entry.caseID, default: []].insert(expertID) }
                if entry.action == "accept_timeout" { timeoutCount += 1; excluded[entry.caseID, default: []].insert(expertID) }
            default: break
            }
        }
        #expect(violations.isEmpty, "\(violations.count) violations, first: \(violations.prefix(5))")
        #expect(completeCount.count == caseCount && completeCount.values.allSatisfy { $0 == 1 })
        #expect(load.values.allSatisfy { $0 == 0 }, "load left after every case completed")
        #expect(declineCount > 0 && timeoutCount > 0, "decline and timeout paths ran (\(declineCount), \(timeoutCount))")
        #expect(expiredUsedAfterExpiry == 0)
        // Every router took part (the intake group spreads entries).
        let actors = Set(entries.filter { $0.action == "submit" }.map(\.actor))
        #expect(actors.count >= 2, "submissions handled by \(actors)")
        // Live state agrees with the replay.
        let states = try await router.expertStates(experts.map(\.id))
        #expect(states.allSatisfy { $0.load == 0 && $0.openCases == 0 })
        #expect(offerCount >= caseCount)
    }
}
