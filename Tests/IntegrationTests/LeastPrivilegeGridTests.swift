import Foundation
import GridContract
import GridSupervisor
import RadGridCore
import RedisClient
import StudyStore
import Testing
import TestSupport

/// `radgrid up` with its own redis-server: the password-less default user is off, every child
/// runs as its role's user with the URL in its environment (never on its command line), the
/// secrets, data and run directories are private, and a restarted Redis keeps the users.
@Suite(.serialized) struct LeastPrivilegeGridTests {
    @Test(.enabled(if: GridEndToEndTests.built, "radgrid, radgrid-worker and radgridctl are not built (swift build, or set RADGRID_BIN_DIR)"))
    func eachChildRunsAsItsOwnUserAndNoSecretIsExposed() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-least-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        var options = LocalGrid.Options(directory: work + "/grid")
        options.workers = 1
        options.experts = 60
        options.stableAge = 2
        options.binDirectory = GridEndToEndTests.binDir
        let grid = LocalGrid(options: options)
        try await grid.start()
        defer { for child in grid.children { _ = child.process.signal(SIGKILL) }; _ = grid.redisServer?.signal(SIGKILL) }

        // Modes: directories 0700, grid.env and every secret 0600.
        func mode(_ path: String) throws -> Int { try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1 }
        for directory in ["", "/secrets", "/redis", "/logs", "/audit"] { #expect(try mode(work + "/grid" + directory) == 0o700, "\(directory)") }
        #expect(try mode(grid.envFile) == 0o600)
        let roles = ["gateway", "dimse", "coordinator", "worker", "router", "portal", "admin", "monitor", "auditor"]
        for role in roles { #expect(try mode(grid.secretsDirectory + "/redis-\(role).url") == 0o600, "\(role)") }

        // The default user is off: no password, no access.
        let port = try #require(grid.redisURL.split(separator: ":").last.map(String.init))
        let anonymous = try RedisClient(url: "redis://127.0.0.1:\(port)")
        defer { anonymous.shutdown() }
        let refused = await (try? anonymous.send("GET", "rg:gateway:tokens").errorMessage) ?? "connection refused"
        #expect(refused.contains("NOAUTH") || refused.contains("WRONGPASS") || refused.contains("refused") || refused.contains("NOPERM"), "\(refused)")

        // Each child: no Redis URL or password in argv; its own role's URL in its environment.
        let passwords = try roles.map { role -> String in
            let url = try #require(Files.read(grid.secretsDirectory + "/redis-\(role).url")).trimmingCharacters(in: .whitespacesAndNewlines)
            return String(url.split(separator: "@")[0].split(separator: ":").last ?? "")
        }
        let expected = ["router": "router", "coordinator": "coordinator", "worker-1": "worker", "auditor": "auditor",
                        "gateway": "gateway", "portal": "portal", "dimse": "dimse"]
        for (name, process) in grid.children {
            let argv = (Files.read("/proc/\(process.pid)/cmdline") ?? "").replacingOccurrences(of: "\0", with: " ")
            #expect(!argv.contains("redis://"), "\(name) has a Redis URL on its command line")
            for password in passwords where !password.isEmpty { #expect(!argv.contains(password), "\(name) has a password on its command line") }
            let environment = (Files.read("/proc/\(process.pid)/environ") ?? "").split(separator: "\0")
            let url = environment.first { $0.hasPrefix("REDIS_URL=") }.map { String($0.dropFirst("REDIS_URL=".count)) }
            if let role = expected[name] {
                #expect(url?.hasPrefix("redis://radgrid-\(role):") == true, "\(name) runs as \(url.map { String($0.prefix(24)) } ?? "nobody")")
            }
        }
        // The monitor's credential is enough for `radgridctl status`, and writes nothing.
        let statusLog = work + "/status.out"
        var monitorEnvironment = ProcessEnvironment.current
        monitorEnvironment["REDIS_URL"] = grid.redisURL(for: .monitor)
        let status = try ChildProcess(executable: GridEndToEndTests.binDir + "/radgridctl", arguments: ["status", "--json"], environment: monitorEnvironment, outputPath: statusLog)
        #expect(status.wait(timeout: .seconds(30)) == 0, "\(Files.read(statusLog) ?? "")")
        #expect(Files.read(statusLog)?.contains("\"workers\"") == true)
        // The operators' file names the admin user.
        #expect(Files.read(grid.envFile)?.contains("REDIS_URL=redis://radgrid-admin:") == true)

        // A restarted Redis keeps the users (its ACL file): the admin URL still works, the anonymous one still does not.
        try await grid.restartRedis()
        let admin = try RedisClient(url: grid.redisURL(for: .admin))
        defer { admin.shutdown() }
        let deadline = ContinuousClock.now + .seconds(15)
        var answered = false
        while ContinuousClock.now < deadline, !answered {
            answered = (try? await admin.send("HLEN", "rg:gateway:tokens").int) != nil
            if !answered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(answered, "the admin user did not survive a Redis restart")
        let again = await (try? anonymous.send("GET", "rg:gateway:tokens").errorMessage) ?? "connection refused"
        #expect(again.contains("NOAUTH") || again.contains("WRONGPASS") || again.contains("refused") || again.contains("NOPERM"), "\(again)")
        await grid.stop(grace: .seconds(10))
    }
}
