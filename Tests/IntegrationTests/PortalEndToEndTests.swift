import Accounts
import Audit
import Coordinator
import DICOM
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import Routing
import Screening
import StudyStore
import Testing
import TestSupport

/// The expert's side of the grid as real processes (router, coordinator, worker, gateway,
/// portal) against a private redis-server, with the reference clients the issue names:
/// dicomweb-client for QIDO/WADO, a Python server-sent-events reader for live offers, and
/// headless Chromium driving the reading page. Checks sign-in, access rules (401, 403 across
/// experts and across sites), revocation, the audit of every read, reports back to the site
/// (JSON and DICOM SR).
@Suite(.serialized) struct PortalEndToEndTests {
    static var binDir: String { GridEndToEndTests.binDir }
    static let prefix = KeyPrefix("rg:")

    struct HTTPReply {
        var status: Int
        var body: Data
        var headers: [String: String]
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
    }

    static func http(_ method: String, _ url: String, token: String? = nil, json: [String: Any]? = nil, accept: String? = nil) async throws -> HTTPReply {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer " + token, forHTTPHeaderField: "Authorization") }
        if let accept { request.setValue(accept, forHTTPHeaderField: "Accept") }
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers[String(describing: key).lowercased()] = String(describing: value) }
        return HTTPReply(status: http.statusCode, body: data, headers: headers)
    }

    static func python(_ script: String, _ arguments: [String], output: String, timeout: Duration = .seconds(120)) throws -> (status: Int32?, text: String) {
        let root = Corpus.packageRoot.path
        let process = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", root + "/" + script] + arguments,
                                       environment: ["PYTHONPATH": root + "/.pydeps", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                                       outputPath: output)
        let status = process.wait(timeout: timeout)
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    static func login(_ portal: String, _ user: String, _ password: String) async throws -> String {
        let reply = try await http("POST", portal + "/api/v1/login", json: ["user": user, "password": password])
        #expect(reply.status == 200, "login of \(user): \(String(decoding: reply.body, as: UTF8.self))")
        return try #require(reply.json?["token"] as? String)
    }

    @Test func expertsSignInReadAndReportAndTheSiteFetchesTheReport() async throws {
        for tool in ["radgrid", "radgrid-worker", "radgridctl"] {
            #expect(FileManager.default.isExecutableFile(atPath: Self.binDir + "/" + tool), "\(tool) is not built (swift build)")
        }
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "chromium is missing (scripts/deps.sh installs it)")
        let server = try await RedisTestServer.start()
        defer { server.stop() }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-portal-\(UUID().uuidString)").path
        // Kept when the test stops early: its logs say why.
        var finished = false
        defer { if finished { try? FileManager.default.removeItem(atPath: work) } }
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }

        // A small roster: two experts who read head and chest CT for H001, one whose licence lapsed.
        let router = ExpertRouter(redis: client, prefix: Self.prefix, actor: "test")
        let later = WallClock.nowMilliseconds() + 86_400_000
        let specialties = [try Specialty("CT/head/neuro"), try Specialty("CT/chest/thoracic")]
        try await router.upsertExperts([
            Expert(id: "EA", name: "Dr A", specialties: specialties, credentials: [Credential(scope: "H001", expires: later)], capacity: 20, licence: Licence(number: "L-1"), practiceSince: 0),
            Expert(id: "EB", name: "Dr B 王医生", specialties: specialties, credentials: [Credential(scope: "H001", expires: later)], capacity: 20, licence: Licence(number: "L-1"), practiceSince: 0),
            Expert(id: "EC", name: "Dr C", specialties: specialties, credentials: [Credential(scope: "H001", expires: WallClock.nowMilliseconds() - 1)], capacity: 20, licence: Licence(number: "L-1"), practiceSince: 0),
            // The QC reader: another specialty, so no case of this test is routed to them.
            Expert(id: "QA", name: "Dr QA", specialties: [try Specialty("MR/msk")], credentials: [Credential(scope: "H001", expires: later)], capacity: 20, licence: Licence(number: "L-9"), practiceSince: 0),
        ], presence: .online, heartbeatUntil: later)
        var settings = AccountSettings()
        settings.bcryptCost = 4
        let accounts = AccountStore(client: client, prefix: Self.prefix, settings: settings)
        for expert in ["EA", "EB", "EC"] {
            try await accounts.setPassword(user: expert, role: .expert, expert: expert, password: "pw-\(expert)-portal-test", by: "admin:test")
        }
        try await accounts.setPassword(user: "site1", role: .site, site: "H001", password: "pw-site1-portal-test", by: "admin:test")
        try await accounts.setPassword(user: "site2", role: .site, site: "H002", password: "pw-site2-portal-test", by: "admin:test")

        var options = LocalGrid.Options(directory: work + "/grid")
        options.redisURL = server.url
        options.prefix = Self.prefix
        options.workers = 1
        options.slots = 2
        options.experts = 0
        options.stableAge = 2
        options.binDirectory = Self.binDir
        let grid = LocalGrid(options: options)
        try await grid.start()
        defer { for c in grid.children { _ = c.process.signal(SIGKILL) } }
        let portal = grid.portalURL
        #expect(portal.hasPrefix("http://127.0.0.1:"))
        #expect((try String(contentsOfFile: grid.envFile, encoding: .utf8)).contains("RADGRID_PORTAL=\(portal)\n"))

        // Two phantom studies over STOW-RS.
        var sentDirs: [String] = []
        for (i, kind) in [PhantomSpec.Kind.head, .chest].enumerated() {
            var spec = PhantomSpec.small(kind, lesionMM: kind == .head ? 16 : 0, seed: UInt64(7100 + i))
            spec.slices = 6
            let dir = "\(work)/s\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (k, bytes) in try Phantom.generate(spec).dicomFiles().enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(k).dcm")) }
            sentDirs.append(dir)
            let submit = try ChildProcess(executable: Self.binDir + "/radgridctl", arguments: ["submit", dir, "--gateway", grid.gatewayURL, "--token", grid.token, "--redis", server.url],
                                          outputPath: work + "/submit-\(i).log")
            #expect(submit.wait(timeout: .seconds(30)) == 0)
        }
        let store = StudyStore(client: client, prefix: Self.prefix)
        var records: [StudyRecord] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            records = []
            for dir in sentDirs {
                let uid = try StudyUID(try DICOMFile.read(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/0.dcm")))).dataSet.string(.studyInstanceUID) ?? "")
                if let record = try await store.record(uid) { records.append(record) }
            }
            if records.count == 2, records.allSatisfy({ $0.state == .assigned }) { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        try #require(records.count == 2 && records.allSatisfy { $0.state == .assigned }, "studies not assigned; logs in \(work)/grid/logs")
        let first = records[0], second = records[1]
        let holder = try #require(first.expert?.rawValue), caseID = try #require(first.caseID?.rawValue)
        let other = holder == "EA" ? "EB" : "EA"

        // Sign-in: 401 without a token or with a wrong password; a lapsed licence is refused.
        #expect(try await Self.http("GET", portal + "/api/v1/me/cases").status == 401)
        #expect(try await Self.http("POST", portal + "/api/v1/login", json: ["user": holder, "password": "wrong-password"]).status == 401)
        #expect(try await Self.http("POST", portal + "/api/v1/login", json: ["user": "EC", "password": "pw-EC-portal-test"]).status == 403)
        let holderToken = try await Self.login(portal, holder, "pw-\(holder)-portal-test")
        let otherToken = try await Self.login(portal, other, "pw-\(other)-portal-test")

        // The worklist: the holder sees the offer, the other expert does not; no patient data before accepting.
        let list = try await Self.http("GET", portal + "/api/v1/me/cases", token: holderToken)
        let rows = try #require(list.json?["cases"] as? [[String: Any]])
        let row = try #require(rows.first { $0["id"] as? String == caseID })
        #expect(row["state"] as? String == "offered")
        #expect(row["study"] as? String == first.uid.rawValue)
        #expect(row["modality"] as? String == "CT")
        #expect((row["deadline_ms"] as? Int ?? 0) > 0)
        let otherRows = try #require(try await Self.http("GET", portal + "/api/v1/me/cases", token: otherToken).json?["cases"] as? [[String: Any]])
        #expect(!otherRows.contains { $0["id"] as? String == caseID })
        let offeredDetail = try await Self.http("GET", portal + "/api/v1/cases/\(caseID)", token: holderToken)
        #expect(offeredDetail.status == 200)
        #expect((offeredDetail.json?["study"] as? [String: Any])?["patient_name"] == nil, "no patient data before the case is accepted")

        // Another expert's case: 403 everywhere; images need the case accepted first.
        #expect(try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/accept", token: otherToken).status == 403)
        #expect(try await Self.http("GET", portal + "/api/v1/cases/\(caseID)", token: otherToken).status == 403)
        #expect(try await Self.http("GET", portal + "/dicomweb/studies/\(first.uid)/series", token: otherToken).status == 403)
        #expect(try await Self.http("GET", portal + "/dicomweb/studies/\(first.uid)/series", token: holderToken).status == 403)
        #expect(try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/accept", token: holderToken).status == 200)
        let detail = try await Self.http("GET", portal + "/api/v1/cases/\(caseID)", token: holderToken)
        #expect((detail.json?["study"] as? [String: Any])?["patient_name"] as? String == "PHANTOM^HEAD")
        #expect((detail.json?["instances"] as? [[String: Any]])?.count == first.instances)

        // DICOMweb with the reference client: QIDO, metadata, instance, frames, rendered — all
        // equal to what was sent.
        let check = try Self.python("Tests/Clients/dicomweb_check.py", ["--url", portal, "--token", holderToken, "--study", first.uid.rawValue, "--sent", sentDirs[0]],
                                    output: work + "/dicomweb.json")
        #expect(check.status == 0, "dicomweb_check failed: \(check.text)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data((check.text.split(separator: "\n").last ?? "").utf8)) as? [String: Any], "\(check.text)")
        #expect(facts["studies_found"] as? [String] == [first.uid.rawValue], "an expert finds only the studies of their accepted cases")
        for key in ["study_patient_id_matches", "study_patient_name_matches", "instances_known", "metadata_rows_match", "metadata_patient_name_matches",
                    "instance_sop_matches", "instance_pixels_match", "frame_bytes_match", "rendered_png_size_matches"] {
            #expect(facts[key] as? Bool == true, "\(key): \(facts)")
        }
        #expect(facts["instances"] as? Int == first.instances)
        #expect(facts["filter_by_patient_id"] as? Int == 1)
        #expect(facts["filter_no_match"] as? Int == 0)
        #expect(facts["rendered_jpeg_format"] as? String == "JPEG")
        #expect(facts["status_without_token"] as? Int == 401)
        #expect(facts["status_bad_token"] as? Int == 401)

        // Sites: their own studies only; another site's study answers as a missing one (404, as the gateway does).
        let site1 = try await Self.login(portal, "site1", "pw-site1-portal-test")
        let site2 = try await Self.login(portal, "site2", "pw-site2-portal-test")
        let site1Studies = String(decoding: try await Self.http("GET", portal + "/dicomweb/studies", token: site1).body, as: UTF8.self)
        #expect(site1Studies.contains(first.uid.rawValue))
        let site2Studies = try await Self.http("GET", portal + "/dicomweb/studies", token: site2)
        #expect(site2Studies.status == 200 && !String(decoding: site2Studies.body, as: UTF8.self).contains(first.uid.rawValue))
        #expect(try await Self.http("GET", portal + "/dicomweb/studies/\(first.uid)/series", token: site2).status == 404)
        #expect(try await Self.http("GET", portal + "/dicomweb/studies/1.2.3.4.5.6.7/series", token: site2).status == 404)

        // Every read is on record: who read what.
        let timeline = try await store.audit(first.uid).entries()
        let views = timeline.filter { $0.action == "study.viewed" }
        for what in ["what=case", "what=search", "what=series-search", "what=instance-search", "what=metadata", "what=instances", "what=frames", "what=rendered"] {
            #expect(views.contains { $0.actor == "expert:\(holder)" && $0.details.contains(what) }, "no study.viewed entry with \(what)")
        }
        #expect(views.contains { $0.actor == "site:H001" })
        #expect(!views.contains { $0.actor == "expert:\(other)" }, "refused reads are not reads")

        // Live offers: both experts listen; the holder of the second case declines it and the
        // other expert is offered it on their open stream.
        let secondCase = try #require(second.caseID?.rawValue), secondHolder = try #require(second.expert?.rawValue)
        let secondOther = secondHolder == "EA" ? "EB" : "EA"
        let listenerToken = secondHolder == holder ? otherToken : holderToken
        let listener = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", Corpus.packageRoot.path + "/Tests/Clients/portal_events.py", "--url", portal,
                                                                               "--token", listenerToken, "--want", "offer:" + secondCase, "--timeout", "30"],
                                        environment: ["PYTHONPATH": Corpus.packageRoot.path + "/.pydeps", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"], outputPath: work + "/events.log")
        try await Task.sleep(for: .seconds(1.5))  // the stream is open (it prints "connected" first)
        let secondHolderToken = secondHolder == holder ? holderToken : otherToken
        let declined = try await Self.http("POST", portal + "/api/v1/cases/\(secondCase)/decline", token: secondHolderToken, json: ["reason": "workload"])
        #expect(declined.status == 200)
        #expect(listener.wait(timeout: .seconds(35)) == 0, "the offer did not reach \(secondOther)'s stream: \((try? String(contentsOfFile: work + "/events.log", encoding: .utf8)) ?? "")")
        #expect(try await router.caseInfo(secondCase)?.expert == secondOther)

        // The report: a draft, then signed; the study is reported and the site fetches it.
        let draft = try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: holderToken,
                                        json: ["findings": "右额叶 16 mm 高密度灶。", "impression": "Acute haemorrhage likely.", "critical": true, "final": false])
        #expect(draft.status == 200)
        #expect((draft.json?["report"] as? [String: Any])?["status"] as? String == "draft")
        #expect(try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: otherToken, json: ["impression": "x", "final": true]).status == 403)
        let signed = try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: holderToken,
                                         json: ["findings": "右额叶 16 mm 高密度灶。", "impression": "Acute haemorrhage likely.", "critical": true, "final": true])
        #expect(signed.status == 200, "\(String(decoding: signed.body, as: UTF8.self))")
        let again = try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: holderToken,
                                        json: ["findings": "changed", "impression": "changed", "final": true])
        #expect(again.status == 409 || again.status == 403, "a signed report cannot be signed again with other text")
        var reported: StudyRecord?
        let reportDeadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < reportDeadline {
            reported = try await store.record(first.uid)
            if reported?.state == .reported { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(reported?.state == .reported)
        // The coordinator counted its turnaround once, every stage, for `radgridctl status`
        // (written just after the transition to reported, so it may trail the state by a moment).
        var turnaround = try await Turnaround(client: client, prefix: Self.prefix).summary()
        let turnaroundDeadline = ContinuousClock.now + .seconds(5)
        while turnaround.reported.values.reduce(0, +) == 0 && ContinuousClock.now < turnaroundDeadline {
            try await Task.sleep(for: .milliseconds(100))
            turnaround = try await Turnaround(client: client, prefix: Self.prefix).summary()
        }
        #expect(turnaround.reported.values.reduce(0, +) == 1)
        #expect(turnaround.stages[first.priority.description]?.count == Turnaround.Stage.allCases.count, "\(turnaround)")
        let signedEntries = try await store.audit(first.uid).entries().filter { $0.action == "report.signed" }
        #expect(signedEntries.count == 1 && signedEntries[0].actor == "expert:\(holder)" && !signedEntries[0].details.contains("haemorrhage"))

        let gatewayJSON = try await Self.http("GET", grid.gatewayURL + "/studies/\(first.uid)/report", token: grid.token)
        #expect(gatewayJSON.status == 200)
        #expect(gatewayJSON.json?["impression"] as? String == "Acute haemorrhage likely.")
        #expect(gatewayJSON.json?["findings"] as? String == "右额叶 16 mm 高密度灶。")
        #expect(gatewayJSON.json?["status"] as? String == "final")
        let sr = try await Self.http("GET", grid.gatewayURL + "/studies/\(first.uid)/report", token: grid.token, accept: "application/dicom")
        #expect(sr.status == 200 && sr.headers["content-type"]?.hasPrefix("application/dicom") == true)
        let document = try DICOMFile.read(Array(sr.body))
        #expect(document.dataSet.string(Tag(0x0008, 0x0016)) == "1.2.840.10008.5.1.4.1.1.88.11")
        #expect(document.dataSet.string(.studyInstanceUID) == first.uid.rawValue)
        #expect(document.dataSet.string(.patientName) == "PHANTOM^HEAD")
        let otherSiteToken = try await SiteTokens(client: client, prefix: Self.prefix).issue(site: "H002")
        #expect(try await Self.http("GET", grid.gatewayURL + "/studies/\(first.uid)/report", token: otherSiteToken).status == 404)
        let amended = try await Self.http("POST", portal + "/api/v1/cases/\(caseID)/report", token: holderToken,
                                          json: ["addendum": "Follow-up CT in 24 h.", "reason": "recommendation"])
        #expect(amended.status == 200)
        #expect(try await store.report(first.uid)?.addenda.count == 1)
        // The operator's view: `radgridctl study UID` shows the report with its addendum.
        let shown = try ChildProcess(executable: Self.binDir + "/radgridctl", arguments: ["study", first.uid.rawValue, "--redis", server.url], outputPath: work + "/study.txt")
        #expect(shown.wait(timeout: .seconds(20)) == 0)
        let studyText = (try? String(contentsOfFile: work + "/study.txt", encoding: .utf8)) ?? ""
        #expect(studyText.contains("REPORT amended by \(holder)") && studyText.contains("Acute haemorrhage likely.") && studyText.contains("Follow-up CT in 24 h."),
                "\(studyText.prefix(2000))")

        // Quality control: an expert's first reads are always read again (Ops/qc.json), blind,
        // by a qualified expert of another hospital: the other expert (the lapsed one never).
        let reviewCase = caseID + ".qc"
        var reviewInfo: CaseInfo?
        let reviewDeadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < reviewDeadline {
            reviewInfo = try await router.caseInfo(reviewCase)
            if reviewInfo != nil { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(reviewInfo?.kind == .review && reviewInfo?.expert == other && reviewInfo?.state == "offered")
        let otherList = try #require(try await Self.http("GET", portal + "/api/v1/me/cases", token: otherToken).json?["cases"] as? [[String: Any]])
        #expect(otherList.first { $0["id"] as? String == reviewCase }?["kind"] as? String == "review")
        #expect(try await Self.http("POST", portal + "/api/v1/cases/\(reviewCase)/accept", token: otherToken, json: [:]).status == 200)
        let blind = try await Self.http("GET", portal + "/api/v1/cases/\(reviewCase)", token: otherToken)
        #expect(blind.status == 200 && blind.json?["report"] is NSNull, "a second read shows no first report before scoring")
        #expect(((blind.json?["instances"] as? [[String: Any]]) ?? []).count == 6)
        #expect(try await Self.http("GET", portal + "/api/v1/cases/\(reviewCase)/report", token: otherToken).status == 403)
        // The images stay for the second reader although the study is reported.
        let reviewSeries = try await Self.http("GET", portal + "/dicomweb/studies/\(first.uid)/series", token: otherToken)
        #expect(reviewSeries.status == 200)
        #expect(try await store.record(first.uid)?.blobsDeleted == false)
        #expect(try await Self.http("POST", portal + "/api/v1/cases/\(reviewCase)/review", token: otherToken, json: ["score": "4"]).status == 400)
        #expect(try await Self.http("POST", portal + "/api/v1/cases/\(reviewCase)/review", token: holderToken, json: ["score": "1"]).status == 403)
        let scored = try await Self.http("POST", portal + "/api/v1/cases/\(reviewCase)/review", token: otherToken,
                                         json: ["score": "2b", "comment": "size underestimated"])
        #expect(scored.status == 200, "\(String(decoding: scored.body, as: UTF8.self))")
        let scoredReview = scored.json?["review"] as? [String: Any]
        #expect(scoredReview?["state"] as? String == "arbitration")
        #expect((scoredReview?["first_report"] as? [String: Any])?["impression"] as? String == "Acute haemorrhage likely.")
        // A qc-role reader settles it; the operator sees the figures.
        try await accounts.setPassword(user: "qc1", role: .qc, expert: "QA", password: "pw-qc1-portal-test", by: "admin:test")
        let qcToken = try await Self.login(portal, "qc1", "pw-qc1-portal-test")
        #expect(try await Self.http("POST", portal + "/api/v1/qc/reviews/\(caseID)/arbitrate", token: otherToken, json: ["score": "2a"]).status == 403)
        let queue = try await Self.http("GET", portal + "/api/v1/qc/queue", token: qcToken)
        #expect(((queue.json?["arbitration"] as? [[String: Any]]) ?? []).contains { $0["case"] as? String == caseID })
        let explained = try await Self.http("GET", portal + "/api/v1/cases/\(caseID)", token: qcToken)
        let routing = explained.json?["routing"] as? [String: Any]
        #expect(((routing?["roster"] as? [[String: Any]]) ?? []).contains { $0["expert"] as? String == "EC" && (($0["reasons"] as? [String]) ?? []).contains("credential_expired") })
        let settled = try await Self.http("POST", portal + "/api/v1/qc/reviews/\(caseID)/arbitrate", token: qcToken, json: ["score": "2a", "comment": "not significant"])
        #expect(settled.status == 200 && (settled.json?["review"] as? [String: Any])?["final_score"] as? String == "2a")
        #expect(try await store.record(first.uid)?.blobsDeleted == true, "the images go once the review closes")
        let stats = try ChildProcess(executable: Self.binDir + "/radgridctl", arguments: ["qc", "stats", "--json", "--redis", server.url, "--prefix", Self.prefix.value],
                                     outputPath: work + "/qc-stats.json")
        #expect(stats.wait(timeout: .seconds(20)) == 0)
        let figures = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/qc-stats.json")))) as? [[String: Any]]
        let holderFigures = figures?.first { $0["expert"] as? String == holder }
        #expect(holderFigures?["reviews"] as? Int == 1 && (holderFigures?["by_score"] as? [String: Int])?["2a"] == 1, "\(String(describing: figures))")
        let explain = try ChildProcess(executable: Self.binDir + "/radgridctl", arguments: ["case", "explain", reviewCase, "--redis", server.url, "--prefix", Self.prefix.value],
                                       outputPath: work + "/explain.txt")
        #expect(explain.wait(timeout: .seconds(20)) == 0)
        let explainText = (try? String(contentsOfFile: work + "/explain.txt", encoding: .utf8)) ?? ""
        #expect(explainText.contains("(review)") && explainText.contains("\(holder)  declined"), "\(explainText)")

        // The reading page in headless Chromium: the other expert signs in, opens the second
        // case, scrolls, signs a report; the report must land.
        let shot = Corpus.packageRoot.path + "/docs/img/reading-page.png"
        let browser = try Self.python("Tests/Browser/reading_page.py", ["--portal", portal, "--user", secondOther, "--password", "pw-\(secondOther)-portal-test",
                                                                         "--case", secondCase, "--lang", "zh-CN", "--screenshot", work + "/reading-page.png", "--timeout", "90"],
                                      output: work + "/browser.log", timeout: .seconds(150))
        #expect(browser.status == 0, "the browser test failed: \(browser.text)")
        let landed = try await store.report(second.uid)
        #expect(landed?.status == .final && landed?.author == secondOther, "the report signed in the browser did not land")
        if browser.status == 0, ProcessInfo.processInfo.environment["RADGRID_UPDATE_SCREENSHOT"] == "1" {
            try? FileManager.default.removeItem(atPath: shot)
            try FileManager.default.copyItem(atPath: work + "/reading-page.png", toPath: shot)
        }

        // Revocation: an operator ends the holder's sessions; the token is refused at once.
        let logout = try ChildProcess(executable: Self.binDir + "/radgridctl", arguments: ["experts", "logout", holder, "--redis", server.url], outputPath: work + "/logout.log")
        #expect(logout.wait(timeout: .seconds(20)) == 0)
        #expect(try await Self.http("GET", portal + "/api/v1/me", token: holderToken).status == 401)
        #expect(try await AuditTrail.verify(client: client, prefix: Self.prefix).isIntact)
        // Every process ran as its own Redis user: nothing its work needs was refused.
        let denials = try await grid.aclDenials()
        #expect(denials.isEmpty, "Redis refused: \(denials)")
        await grid.stop(grace: .seconds(10))
        finished = true
    }
}
