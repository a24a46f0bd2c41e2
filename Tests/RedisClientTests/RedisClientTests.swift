import RedisClient
import TestSupport
import Testing

@Suite("RedisClient against a real redis-server")
struct RedisClientTests {
    @Test func pingAndSimpleValues() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        #expect(try await client.send("PING") == .status("PONG"))
        try await client.send("SET", RedisArgument(prefix + "k"), "value")
        #expect(try await client.send("GET", RedisArgument(prefix + "k")).string == "value")
        #expect(try await client.send("GET", RedisArgument(prefix + "missing")).isNull)
        #expect(try await client.send("INCRBY", RedisArgument(prefix + "n"), 41) == .integer(41))
    }

    @Test func pipelinesTenThousandCommandsInOneBatch() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let key = RedisArgument(TestRedis.uniquePrefix() + "counter")
        let commands = (0..<10_000).map { _ in RedisCommand("INCR", key) }
        let replies = try await client.pipeline(commands)
        #expect(replies.count == 10_000)
        // Replies arrive in order: the n-th INCR returns n.
        #expect(replies.enumerated().allSatisfy { $0.element == .integer(Int64($0.offset + 1)) })
        #expect(try await client.send("GET", key).int == 10_000)
    }

    @Test func binaryValuesWithNulBytesRoundTrip() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let key = RedisArgument(TestRedis.uniquePrefix() + "binary")
        let value: [UInt8] = [0, 1, 0, 255, 0, 13, 10, 0] + (0...255).map { UInt8($0) }
        try await client.send("SET", key, RedisArgument(value))
        #expect(try await client.send("GET", key).bytes == value)
        #expect(try await client.send("STRLEN", key) == .integer(Int64(value.count)))
    }

    @Test func sixtyFourMebibyteValueRoundTrips() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let key = RedisArgument(TestRedis.uniquePrefix() + "large")
        var generator = SplitMix(seed: 7)
        var value = [UInt8](repeating: 0, count: 64 << 20)
        for index in stride(from: 0, to: value.count, by: 8) {
            let word = generator.next()
            for byte in 0..<8 { value[index + byte] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(byte))) }
        }
        try await client.send("SET", key, RedisArgument(value))
        let back = try await client.send("GET", key).bytes
        #expect(back?.count == value.count)
        #expect(back == value)
        try await client.send("DEL", key)
    }

    @Test func serverErrorTextSurfaces() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let key = RedisArgument(TestRedis.uniquePrefix() + "text")
        try await client.send("SET", key, "not a number")
        let error = await #expect(throws: RedisError.self) { try await client.send("INCR", key) }
        #expect(error?.code == "redis.server")
        #expect(error?.message.contains("not an integer") == true)
        // In a pipeline the error takes its slot and the other replies survive.
        let replies = try await client.pipeline([RedisCommand("INCR", key), RedisCommand("PING")])
        #expect(replies[0].errorMessage?.hasPrefix("ERR") == true)
        #expect(replies[1] == .status("PONG"))
    }

    @Test func scriptSurvivesScriptFlush() async throws {
        // A server of its own: SCRIPT FLUSH would disturb every other test's scripts.
        let server = try await RedisTestServer.start()
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let key = RedisArgument(TestRedis.uniquePrefix() + "script")
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await client.evalScript(script, keys: [key], arguments: ["2"]) == .integer(2))
        try await client.send("SCRIPT", "FLUSH")
        #expect(try await client.evalScript(script, keys: [key], arguments: ["3"]) == .integer(5))
        // Pipelined script calls are replayed as well.
        try await client.send("SCRIPT", "FLUSH")
        let replies = try await client.pipeline([.script(script, keys: [key], arguments: ["1"]), .script(script, keys: [key], arguments: ["1"])])
        #expect(replies == [.integer(6), .integer(7)])
    }

    @Test func manyTasksShareTheClient() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let key = RedisArgument(TestRedis.uniquePrefix() + "shared")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask { for _ in 0..<50 { try await client.send("INCR", key) } }
            }
            try await group.waitForAll()
        }
        #expect(try await client.send("GET", key).int == 64 * 50)
    }

    @Test func blockingReadReturnsOnTimeoutAndOnData() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let stream = RedisArgument(TestRedis.uniquePrefix() + "stream")
        try await client.send("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM")
        let consumer = client.dedicatedConnection()
        defer { consumer.close() }
        let read: [RedisArgument] = ["XREADGROUP", "GROUP", "workers", "w1", "COUNT", "10", "BLOCK", "300", "STREAMS", stream, ">"]

        let clock = ContinuousClock()
        let started = clock.now
        let empty = try await consumer.send(read, blockingFor: .milliseconds(300))
        #expect(empty.isNull)
        #expect(clock.now - started >= .milliseconds(250))

        async let blocked = consumer.send(["XREADGROUP", "GROUP", "workers", "w1", "COUNT", "10", "BLOCK", "5000", "STREAMS", stream, ">"], blockingFor: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))
        try await client.send("XADD", stream, "*", "task", "one")
        let delivered = try await blocked
        let entries = delivered.array?.first?.array?[1].array
        #expect(entries?.count == 1)
        #expect(entries?.first?.array?[1].fieldMap?["task"]?.string == "one")
    }

    @Test func cancellingABlockedReadReturnsPromptly() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let consumer = client.dedicatedConnection()
        defer { consumer.close() }
        let list = RedisArgument(TestRedis.uniquePrefix() + "zset")
        let clock = ContinuousClock()
        let started = clock.now
        let task = Task { try await consumer.send("BZPOPMIN", list, "60", blockingFor: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        _ = await task.result
        // Uninterrupted, the read would last 60 s; the bound leaves room for a loaded machine.
        #expect(clock.now - started < .seconds(15))
        // The connection recovers for the next command.
        #expect(try await consumer.send("PING") == .status("PONG"))
    }

    @Test func survivesRedisServerRestart() async throws {
        let server = try await RedisTestServer.start(appendOnly: true)
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let consumer = client.dedicatedConnection()
        defer { consumer.close() }
        try await client.send("SET", "before", "1")
        #expect(try await consumer.send("PING") == .status("PONG"))
        server.kill()
        // While the server is down commands fail with a typed transport error...
        var configuration = client.configuration
        configuration.reconnectWait = .zero
        let impatient = RedisClient(configuration: configuration)
        defer { impatient.shutdown() }
        let error = await #expect(throws: RedisError.self) { try await impatient.send("PING") }
        #expect(error?.isConnectionFailure == true)
        // ...and once it is back the same client works again without being rebuilt: a
        // command issued during the restart waits for it (reconnect with backoff).
        async let restarted: Void = server.restart()
        let value = try await client.send("GET", "before")
        try await restarted
        #expect(value.string == "1")
        #expect(try await consumer.send("PING") == .status("PONG"))
    }

    @Test func authenticationWithACLUserAndDatabaseSelection() async throws {
        let server = try await RedisTestServer.start()
        let admin = try RedisClient(url: server.url)
        defer { admin.shutdown() }
        try await admin.send("ACL", "SETUSER", "worker", "on", ">s3cret", "~*", "+@all")
        let client = try RedisClient(url: server.url.replacingOccurrences(of: "redis://", with: "redis://worker:s3cret@") + "/3")
        defer { client.shutdown() }
        try await client.send("SET", "where", "db3")
        try await admin.send("SELECT", "3")
        #expect(try await admin.send("ACL", "WHOAMI").string == "default")
        let wrong = try RedisClient(url: server.url.replacingOccurrences(of: "redis://", with: "redis://worker:wrong@"))
        defer { wrong.shutdown() }
        let error = await #expect(throws: RedisError.self) { try await wrong.send("PING") }
        #expect(error?.message.contains("WRONGPASS") == true)
        #expect(error?.message.contains("wrong") == false)
        // The pool has connection 1 on db 0; check db 3 through a dedicated client.
        let db3 = try RedisClient(url: server.url + "/3")
        defer { db3.shutdown() }
        #expect(try await db3.send("GET", "where").string == "db3")
    }
}

@Suite struct RedisConfigurationTests {
    @Test func parsesURLs() throws {
        let full = try RedisConfiguration(url: "redis://alice:p%40ss@redis.example:6380/2?timeout=1.5&pool=8")
        #expect(full.endpoint == .tcp(host: "redis.example", port: 6380))
        #expect(full.username == "alice")
        #expect(full.password == "p@ss")
        #expect(full.database == 2)
        #expect(full.poolSize == 8)
        #expect(full.commandTimeout == .milliseconds(1500))
        #expect(full.redactedURL == "redis://alice:***@redis.example:6380/2")
        let unix = try RedisConfiguration(url: "unix:///var/run/redis.sock?db=1")
        #expect(unix.endpoint == .unix(path: "/var/run/redis.sock"))
        #expect(unix.database == 1)
        #expect(try RedisConfiguration(url: "redis://[::1]:7000").endpoint == .tcp(host: "::1", port: 7000))
        #expect(try RedisConfiguration(url: "redis://secret@host").password == "secret")
    }

    @Test func rejectsBadURLs() {
        for bad in ["http://x", "redis://host:notaport", "redis://host:70000", "redis://host/-1", "unix://relative", "redis://h?bogus=1"] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
    }
}

/// Deterministic test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
