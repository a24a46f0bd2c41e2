import Foundation

/// A private CA with a server and a client certificate, made by `scripts/redis-tls-certs.sh`:
/// the tests use the script operators run, so it is tested with every TLS test.
public struct TestPKI: Sendable {
    public let ca: String
    public let serverCertificate: String
    public let serverKey: String
    public let clientCertificate: String
    public let clientKey: String

    /// `serverNames`: the server certificate's DNS names and IP addresses, comma-separated.
    public static func make(in dir: String, serverNames: String = "127.0.0.1,localhost") async throws -> TestPKI {
        let script = Corpus.packageRoot.appendingPathComponent("scripts/redis-tls-certs.sh").path
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else {
            throw TestSupportError("/usr/bin/openssl is missing (scripts/deps.sh installs it with stunnel4)")
        }
        // Created here (parents too) so the log has a place; the script accepts an existing DIR.
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let log = dir + "/make.log"
        let process = try ChildProcess(executable: "/bin/bash", arguments: [script, dir, serverNames], outputPath: log)
        guard await process.exit(timeout: .seconds(60)) == 0 else {
            _ = process.signal(SIGKILL)
            throw TestSupportError("\(script) failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return TestPKI(ca: dir + "/ca.pem", serverCertificate: dir + "/server.pem", serverKey: dir + "/server.key",
                       clientCertificate: dir + "/client.pem", clientKey: dir + "/client.key")
    }
}

/// Debian's `stunnel4` as a child process, handed out once its `accept` port listens.
public final class StunnelProcess: Sendable {
    public static let executable = "/usr/bin/stunnel4"
    public let process: ChildProcess
    public let logPath: String

    private init(process: ChildProcess, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    /// Writes `config` (it must say `foreground = yes`) to `path` and starts stunnel on it;
    /// throws with stunnel's log when it exits or `port` does not listen within 30 s (the whole
    /// suite runs beside it on two cores).
    public static func start(config: String, at path: String, listeningOn port: Int, log: String) async throws -> StunnelProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError("\(executable) is missing (scripts/deps.sh installs stunnel4)")
        }
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let stunnel = StunnelProcess(process: try ChildProcess(name: "stunnel", executable: executable, arguments: [path], outputPath: log), logPath: log)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, stunnel.process.isRunning {
            if isListening(port: port) { return stunnel }
            try await Task.sleep(for: .milliseconds(20))
        }
        stunnel.stop()
        throw TestSupportError("stunnel did not listen on port \(port):\n\(stunnel.log)")
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func stop() { process.terminate(grace: .seconds(2)) }

    /// Whether a socket is in LISTEN on `port` (read from /proc: probing by connecting would
    /// open a tunnel connection and clutter the log).
    public static func isListening(port: Int) -> Bool {
        let wanted = String(format: ":%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // fields: sl, local address (hex ip:port), remote address, state (0A = LISTEN), …
                if fields.count > 3, fields[1].hasSuffix(wanted), fields[3] == "0A" { return true }
            }
        }
        return false
    }
}
