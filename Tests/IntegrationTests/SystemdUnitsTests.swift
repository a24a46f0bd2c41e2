import Foundation
import RadGridCore
import Testing
import TestSupport

/// The systemd units in Ops/systemd: each passes `systemd-analyze verify` without a warning
/// (with the units' binaries pointed at this build), runs as a dynamic user in a read-only
/// system with no privileges to gain, restarts on failure, and takes its secrets as
/// credentials, never in the unit or on the command line.
@Suite("Ops: systemd units")
struct SystemdUnitsTests {
    static let directory = Corpus.packageRoot.appendingPathComponent("Ops/systemd").path

    static func units() throws -> [(name: String, text: String)] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".service") }.sorted().map {
            ($0, try String(contentsOfFile: directory + "/" + $0, encoding: .utf8))
        }
    }

    @Test func everyDaemonHasAUnitThatSystemdAcceptsWithoutAWarning() throws {
        let units = try Self.units()
        #expect(Set(units.map(\.name)) == ["radgrid-gateway.service", "radgrid-dimse.service", "radgrid-coordinator@.service", "radgrid-router.service",
                                           "radgrid-worker@.service", "radgrid-portal.service", "radgrid-auditor.service", "radgrid-feed.service",
                                           "radgrid-edge.service"])
        let analyze = "/usr/bin/systemd-analyze"
        try #require(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is missing (Debian's systemd package)")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-units-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // The binaries where this build has them (the units name /usr/local/bin, where they are installed).
        for unit in units {
            try unit.text.replacingOccurrences(of: "/usr/local/bin/", with: GridEndToEndTests.binDir + "/")
                .write(toFile: work + "/" + unit.name, atomically: true, encoding: .utf8)
        }
        let log = work + "/verify.log"
        let verify = try ChildProcess(executable: analyze, arguments: ["verify"] + units.map { work + "/" + $0.name }, outputPath: log)
        #expect(verify.wait(timeout: .seconds(60)) == 0)
        // Unknown or misspelt settings are only warned about: any output fails.
        let output = Files.read(log) ?? ""
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(output)")
    }

    @Test func everyUnitIsConfinedAndTakesItsSecretsAsCredentials() throws {
        for (name, text) in try Self.units() {
            let lines = Set(text.split(separator: "\n").map(String.init))
            for required in ["DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes",
                             "CapabilityBoundingSet=", "Restart=on-failure", "UMask=0077"] {
                #expect(lines.contains(required), "\(name) lacks \(required)")
            }
            // Daemons reach Redis with their role's URL, handed in as the redis-url credential.
            if name != "radgrid-edge.service" {
                #expect(lines.contains { $0.hasPrefix("LoadCredential=redis-url:/etc/radgrid/secrets/redis-") }, "\(name) has no Redis credential")
            }
            // No secret in the unit itself.
            #expect(!text.contains("redis://"), "\(name) names a Redis URL")
            #expect(!text.contains("--token ") && !text.contains("--redis "), "\(name) puts a secret on the command line")
            #expect(!lines.contains { $0.hasPrefix("Environment=") && ($0.contains("TOKEN") || $0.contains("URL") || $0.contains("SECRET")) }, "\(name)")
        }
    }

    /// How a daemon finds its URL: `--redis`, `REDIS_URL`, a file (`REDIS_URL_FILE`), or the
    /// credential systemd put in `$CREDENTIALS_DIRECTORY/redis-url`.
    @Test func theRedisURLComesFromAFileOrASystemdCredential() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-cred-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Files.write(work + "/redis-url", "redis://radgrid-worker:secret@10.0.0.5:6380\n", mode: 0o400)
        try Files.write(work + "/other.url", "redis://radgrid-router:x@10.0.0.6:6380", mode: 0o400)
        #expect(RedisEndpoint.resolve(option: nil, environment: ["CREDENTIALS_DIRECTORY": work]) == "redis://radgrid-worker:secret@10.0.0.5:6380")
        #expect(RedisEndpoint.resolve(option: nil, environment: ["REDIS_URL_FILE": work + "/other.url", "CREDENTIALS_DIRECTORY": work]) == "redis://radgrid-router:x@10.0.0.6:6380")
        #expect(RedisEndpoint.resolve(option: nil, environment: ["REDIS_URL": "redis://a:b@h:1", "CREDENTIALS_DIRECTORY": work]) == "redis://a:b@h:1")
        #expect(RedisEndpoint.resolve(option: "redis://o:p@h:2", environment: ["CREDENTIALS_DIRECTORY": work]) == "redis://o:p@h:2")
        #expect(RedisEndpoint.resolve(option: nil, environment: ["CREDENTIALS_DIRECTORY": work + "/missing"]) == RedisEndpoint.defaultURL)
    }
}
