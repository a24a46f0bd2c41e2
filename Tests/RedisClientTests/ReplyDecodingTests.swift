import RedisClient
import TestSupport
import Testing

@Suite("Commands built in place and replies decoded in place")
struct ReplyDecodingTests {
    @Test func appendedArgumentsReachTheServerByteForByte() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let key = TestRedis.uniquePrefix() + "built"
        var command = RedisCommand(reservingCapacity: 4)  // grows past its reservation
        command.append("RPUSH")
        command.append(key)
        command.append(-9_223_372_036_854_775_807 - 1)
        command.append(0)
        command.append([0x00, 0xff, 0x0d, 0x0a])
        command.append("")
        command.append("ünïcode text longer than fifteen bytes")
        #expect(command.argumentCount == 7)
        #expect(try await client.pipeline([command]) == [.integer(5)])
        let stored = try await client.send("LRANGE", RedisArgument(key), "0", "-1")
        #expect(stored == .array([
            .bulk(Array("-9223372036854775808".utf8)), .bulk(Array("0".utf8)), .bulk([0x00, 0xff, 0x0d, 0x0a]),
            .bulk([]), .bulk(Array("ünïcode text longer than fifteen bytes".utf8)),
        ]))
    }

    @Test func decodesRepliesWithoutCopyingThemFirst() async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        try await client.send("RPUSH", RedisArgument(prefix + "list"), "a", "-42", "k")
        try await client.send("SET", RedisArgument(prefix + "text"), "x")

        struct Seen: Sendable, Equatable {
            var kind: RedisReply.Kind
            var count: Int
            var int: Int64?
            var string: String?
            var error: String?
            var firstIsA: Bool
        }
        let replies = try await client.pipeline([
            RedisCommand("LRANGE", RedisArgument(prefix + "list"), "0", "-1"),
            RedisCommand("INCR", RedisArgument(prefix + "counter")),
            RedisCommand("INCR", RedisArgument(prefix + "text")),
            RedisCommand("GET", RedisArgument(prefix + "missing")),
            RedisCommand("PING"),
        ]) { reply in
            Seen(kind: reply.kind, count: reply.count, int: reply.int ?? reply[1]?.int, string: reply.string ?? reply[2]?.string,
                 error: reply.errorMessage, firstIsA: reply[0]?.equals("a") ?? false)
        }
        #expect(replies == [
            Seen(kind: .array, count: 3, int: -42, string: "k", error: nil, firstIsA: true),
            Seen(kind: .integer, count: 0, int: 1, string: nil, error: nil, firstIsA: false),
            Seen(kind: .error, count: 0, int: nil, string: nil, error: "ERR value is not an integer or out of range", firstIsA: false),
            Seen(kind: .null, count: 0, int: nil, string: nil, error: nil, firstIsA: false),
            Seen(kind: .status, count: 0, int: nil, string: "PONG", error: nil, firstIsA: false),
        ])
    }

    @Test func decodedScriptCallsAreReplayedAfterAFlush() async throws {
        let server = try await RedisTestServer.start()
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let script = RedisScript("return {ARGV[1], 7}")
        try await client.send("SCRIPT", "FLUSH")
        let replies = try await client.pipeline([.script(script, keys: [], arguments: ["first"]), RedisCommand("PING")]) { reply in
            reply.kind == .array ? reply[0]?.string : reply.string
        }
        #expect(replies == ["first", "PONG"])
    }

    @Test func parsesIntegersInPlace() {
        func parse(_ text: String) -> Int64? { Array(text.utf8).withUnsafeBytes { RedisReply.parseInteger($0) } }
        #expect(parse("0") == 0)
        #expect(parse("1700000000000") == 1_700_000_000_000)
        #expect(parse("-17") == -17)
        #expect(parse("") == nil)
        #expect(parse("-") == nil)
        #expect(parse("12a") == nil)
        #expect(parse(" 1") == nil)
        #expect(parse("1234567890123456789") == nil)  // longer than we accept: refused, not wrapped
    }
}
