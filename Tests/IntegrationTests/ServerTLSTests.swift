import Foundation
import RadGridCore
import TestSupport
import Testing

/// `radgrid portal` and `radgrid gateway` serve HTTPS with `--tls-cert/--tls-key`: a client
/// that trusts the CA gets through, plain HTTP on the same port does not.
@Suite(.serialized) struct ServerTLSTests {
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid is not built (swift build, or set RADGRID_BIN_DIR)"), arguments: ["portal", "gateway"])
    func theServerAnswersHTTPSOnly(_ role: String) async throws {
        let url = try await TestRedis.url()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(role)-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let pki = try await TestPKI.make(in: work + "/pki")
        let port = try freePort()
        let server = try ChildProcess(executable: GridEndToEndTests.binDir + "/radgrid",
                                      arguments: [role, "--port", String(port), "--redis", url, "--prefix", TestRedis.uniquePrefix("tls"),
                                                  "--tls-cert", pki.serverCertificate, "--tls-key", pki.serverKey],
                                      outputPath: work + "/server.log")
        defer { server.terminate(grace: .seconds(2)) }
        for _ in 0..<100 where !((try? String(contentsOfFile: work + "/server.log", encoding: .utf8)) ?? "").contains("listening on https://") {
            try await Task.sleep(for: .milliseconds(100))
        }
        let secure = try EdgeGridTests.curl(["-s", "-S", "--cacert", pki.ca, "https://127.0.0.1:\(port)/health"])
        #expect(secure.status == 0 && secure.output.contains("ok"), "\(secure.output) \((try? String(contentsOfFile: work + "/server.log", encoding: .utf8)) ?? "")")
        let untrusted = try EdgeGridTests.curl(["-s", "-S", "https://127.0.0.1:\(port)/health"])
        #expect(untrusted.status != 0, "a client that does not trust the CA must fail: \(untrusted.output)")
        let plain = try EdgeGridTests.curl(["-s", "-S", "-m", "5", "http://127.0.0.1:\(port)/health"])
        #expect(plain.status != 0 || !plain.output.contains("ok"), "plain HTTP must not be answered: \(plain.output)")
    }
}
