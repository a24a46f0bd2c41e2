import Foundation
import RedisClient
import TestSupport
import Testing

/// The shipped Redis configuration and ACL users, on a real redis-server.
@Suite("Ops: redis.conf and ACL users")
struct OpsConfigTests {
    @Test func roleUsersAreConfinedToTheGridsKeysAndSafeCommands() async throws {
        let root = Corpus.packageRoot
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let acl = directory.appendingPathComponent("users.acl").path
        let secrets = directory.appendingPathComponent("secrets.env").path
        let port = try freePort()

        var environment = ProcessInfo.processInfo.environment
        environment["RADGRID_REDIS_HOST"] = "127.0.0.1:\(port)"
        let render = try ChildProcess(executable: root.appendingPathComponent("Ops/redis/render-acl.sh").path, arguments: [acl, secrets], environment: environment)
        #expect(render.wait(timeout: .seconds(10)) == 0)
        let aclText = try String(contentsOfFile: acl, encoding: .utf8)
        #expect(!aclText.contains("@WORKER@"))

        let server = try ChildProcess(executable: "redis-server", arguments: [
            root.appendingPathComponent("Ops/redis/redis.conf").path, "--aclfile", acl, "--port", String(port),
            "--bind", "127.0.0.1", "--dir", directory.path, "--daemonize", "no",
        ], outputPath: directory.appendingPathComponent("redis.log").path)
        defer { server.terminate(grace: .seconds(5)) }

        let urls = try String(contentsOfFile: secrets, encoding: .utf8).split(separator: "\n").reduce(into: [String: String]()) { result, line in
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        let workerURL = try #require(urls["RADGRID_WORKER_REDIS_URL"])
        var worker: RedisClient?
        for _ in 0..<100 {
            let candidate = try RedisClient(url: workerURL)
            if (try? await candidate.send("PING")) == .status("PONG") { worker = candidate; break }
            candidate.shutdown()
            try await Task.sleep(for: .milliseconds(50))
        }
        let client = try #require(worker, "redis-server with the shipped config did not start")
        defer { client.shutdown() }

        // What a worker needs works (its queue's keys)...
        try await client.send("SET", "rg:{q:tasks}:result:probe", "1")
        #expect(try await client.evalScript(RedisScript("return redis.call('GET', KEYS[1])"), keys: ["rg:{q:tasks}:result:probe"]).string == "1")
        try await client.send("XADD", "rg:{q:tasks}:lane:stat", "*", "k", "v")
        // ...and nothing else does: other keys (even the grid's: site tokens, accounts), server commands.
        for forbidden: [RedisArgument] in [["SET", "other", "1"], ["SET", "rg:probe", "1"], ["HGETALL", "rg:gateway:tokens"], ["HGETALL", "rg:accounts:e1"],
                                           ["FLUSHALL"], ["CONFIG", "GET", "maxmemory"], ["KEYS", "*"]] {
            let error = await #expect(throws: RedisError.self) { try await client.send(forbidden) }
            #expect(error?.message.contains("NOPERM") == true)
        }
        // The default user is off and the config asks for AOF and no eviction.
        let anonymous = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), reconnectWait: .zero))
        defer { anonymous.shutdown() }
        await #expect(throws: RedisError.self) { try await anonymous.send("GET", "rg:probe") }
        let admin = try RedisClient(url: try #require(urls["RADGRID_ADMIN_REDIS_URL"]))
        defer { admin.shutdown() }
        let persistence = try await admin.send("INFO", "persistence").string ?? ""
        #expect(persistence.contains("aof_enabled:1"))
        // A hard memory limit without eviction: writes are refused at the limit, never dropped,
        // and the gateway's backpressure reads the limit (429 at 85 %).
        let memory = try await admin.send("INFO", "memory").string ?? ""
        #expect(memory.contains("maxmemory_policy:noeviction"))
        let limit = memory.split(whereSeparator: \.isNewline).first { $0.hasPrefix("maxmemory:") }.flatMap { Int64($0.dropFirst("maxmemory:".count)) } ?? 0
        #expect(limit >= 1 << 30)
    }
}
