import Audit
import Foundation
import RadGridCore
import RedisClient
import TestSupport
import Testing

/// `radgridctl audit export --format fhir` writes FHIR R4 AuditEvent resources that the
/// reference validator (fhir.resources, PyPI, pinned in .pydeps) accepts, one per audit
/// entry of the time range, as NDJSON and as one Bundle.
@Suite("radgridctl audit export", .enabled(if: RadGridCtlBinary.path != nil, "radgridctl is not built (swift build --product radgridctl, or set RADGRID_BIN_DIR)"))
struct AuditExportTests {
    @Test func everyEntryOfTheRangeBecomesAValidAuditEvent() async throws {
        let url = try await TestRedis.url()
        let prefix = TestRedis.uniquePrefix("fhir")
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let before = WallClock.nowMilliseconds()
        let gateway = AuditTrail(client: client, prefix: KeyPrefix(prefix), chain: "s:1.2.840.99.1")
        try await gateway.append(actor: AuditActor(.site, "H1"), action: "study.received", study: "1.2.840.99.1", details: "instances=3")
        try await gateway.append(actor: AuditActor(.expert, "E0042"), action: "case.viewed", study: "1.2.840.99.1")
        // Entries of different chains within one millisecond are exported in chain-name order;
        // the pauses make the expected order the order of appending.
        try await Task.sleep(for: .milliseconds(3))
        let access = AuditTrail(client: client, prefix: KeyPrefix(prefix), chain: "access")
        try await access.append(actor: AuditActor(.system, "portal"), action: "auth.login", details: "user=E0042;outcome=ok")
        try await Task.sleep(for: .milliseconds(3))
        let admin = AuditTrail(client: client, prefix: KeyPrefix(prefix), chain: "admin")
        try await admin.append(actor: AuditActor(.admin, "alice"), action: "admin.site.tokensRevoked", details: "site=H9;tokens=1")
        try await Task.sleep(for: .milliseconds(5))
        let after = WallClock.nowMilliseconds()
        // `--until` is inclusive: the pause puts the next entry past it.
        try await Task.sleep(for: .milliseconds(3))
        // Outside the range: not exported.
        try await admin.append(actor: AuditActor(.admin, "alice"), action: "admin.site.tokenIssued", details: "site=H9")

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("fhir-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let common = ["--redis", url, "--prefix", prefix, "--since", String(before), "--until", String(after), "--format", "fhir"]
        #expect(try RadGridCtlBinary.run(["audit", "export", "--out", work + "/events.ndjson"] + common).0 == 0)
        #expect(try RadGridCtlBinary.run(["audit", "export", "--bundle", "--out", work + "/bundle.json"] + common).0 == 0)

        let lines = try String(contentsOfFile: work + "/events.ndjson", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        let events = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        #expect(events.map { ($0["subtype"] as? [[String: Any]])?.first?["code"] as? String } == ["study.received", "case.viewed", "auth.login", "admin.site.tokensRevoked"])
        #expect(events.map { $0["action"] as? String } == ["C", "R", "E", "D"])
        #expect(events.map { ($0["type"] as? [String: Any])?["code"] as? String } == ["110107", "110110", "110114", "110100"])
        let hashes = try await gateway.entries().map(\.hash)
        let first = (events[0]["entity"] as? [[String: Any]])?.first
        #expect(((first?["what"] as? [String: Any])?["identifier"] as? [String: Any])?["value"] as? String == "urn:oid:1.2.840.99.1")
        #expect((first?["detail"] as? [[String: Any]])?.contains { $0["type"] as? String == "hash" && $0["valueString"] as? String == hashes[0] } == true)

        for (file, flags) in [("events.ndjson", [String]()), ("bundle.json", ["--bundle"])] {
            let out = work + "/validate-\(file).log"
            let python = try ChildProcess(executable: "/usr/bin/python3",
                                          arguments: [Corpus.packageRoot.path + "/Tests/Clients/fhir_validate.py", work + "/" + file] + flags,
                                          environment: ["PYTHONPATH": Corpus.packageRoot.path + "/.pydeps", "PATH": "/usr/bin:/bin"], outputPath: out)
            let status = python.wait(timeout: .seconds(60))
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            #expect(status == 0 && text.contains("valid 4"), "\(file): \(text)")
        }
    }
}
