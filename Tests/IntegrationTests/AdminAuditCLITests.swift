import Audit
import Foundation
import RadGridCore
import RedisClient
import TestSupport
import Testing

/// Administrative changes made with radgridctl are audited in the `admin` chain, attributed
/// to the operator, without the secrets they handle.
@Suite("radgridctl admin audit", .enabled(if: RadGridCtlBinary.path != nil, "radgridctl is not built (swift build --product radgridctl, or set RADGRID_BIN_DIR)"))
struct AdminAuditCLITests {
    @Test func siteTokenAETitleAndPACSChangesAreAuditedWithTheOperator() async throws {
        let url = try await TestRedis.url()
        let prefix = TestRedis.uniquePrefix("admin")
        let common = ["--redis", url, "--prefix", prefix]
        func ctl(_ arguments: [String]) throws -> (Int32?, String) {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("radgridctl-\(UUID().uuidString).out").path
            defer { try? FileManager.default.removeItem(atPath: output) }
            var environment = ProcessEnvironment.current
            environment["RADGRID_OPERATOR"] = "alice"
            let process = try ChildProcess(executable: try #require(RadGridCtlBinary.path), arguments: arguments + common, environment: environment, outputPath: output)
            return (process.wait(timeout: .seconds(30)), (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        let (issued, token) = try ctl(["sites", "add", "H9"])
        #expect(issued == 0)
        #expect(try ctl(["sites", "dicom", "H9", "--ae", "H9PACS", "--from", "10.0.0.0/8"]).0 == 0)
        #expect(try ctl(["sites", "pacs", "H9", "--ae", "H9PACS", "--host", "10.0.0.5", "--port", "104"]).0 == 0)
        #expect(try ctl(["sites", "dicom-remove", "H9PACS"]).0 == 0)
        #expect(try ctl(["sites", "revoke", "H9"]).0 == 0)

        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let entries = try await AuditTrail(client: client, prefix: KeyPrefix(prefix), chain: "admin").entries()
        #expect(entries.map(\.action) == ["admin.site.tokenIssued", "admin.dicom.callerRegistered", "admin.dicom.pacsSet",
                                          "admin.dicom.callerRemoved", "admin.site.tokensRevoked"])
        #expect(entries.allSatisfy { $0.actor == "admin:alice" })
        let secret = token.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!secret.isEmpty && entries.allSatisfy { !$0.details.contains(secret) })
        #expect(entries.last?.details == "site=H9;tokens=1")
        #expect(try await AuditTrail.verify(client: client, prefix: KeyPrefix(prefix)).isIntact)
    }

    @Test func blobKeyCreationAndRotationAreAuditedWithoutKeyBytes() async throws {
        let url = try await TestRedis.url()
        let prefix = TestRedis.uniquePrefix("keys")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rg-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/blob-keys.json"
        func ctl(_ arguments: [String]) throws -> Int32? {
            var environment = ProcessEnvironment.current
            environment["RADGRID_OPERATOR"] = "bob"
            return try ChildProcess(executable: try #require(RadGridCtlBinary.path), arguments: arguments + ["--redis", url, "--prefix", prefix],
                                    environment: environment, outputPath: directory + "/out.log").wait(timeout: .seconds(30))
        }
        #expect(try ctl(["keys", "init", "--file", file]) == 0)
        #expect(try ctl(["keys", "rotate", "--file", file]) == 0)
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let entries = try await AuditTrail(client: client, prefix: KeyPrefix(prefix), chain: "admin").entries()
        #expect(entries.map(\.action) == ["admin.keys.created", "admin.keys.rotated"])
        #expect(entries.map(\.details) == ["file=blob-keys.json;current=k1", "file=blob-keys.json;current=k2"])
        #expect(entries.allSatisfy { $0.actor == "admin:bob" })
        // The file's key bytes never reach the audit trail.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        let keys = (json?["keys"] as? [String: String]) ?? [:]
        #expect(keys.count == 2 && entries.allSatisfy { entry in keys.values.allSatisfy { !entry.details.contains($0) } })
    }
}
