import Foundation
@testable import RedisClient
import Testing
import TestSupport

@Suite struct ClusterSlotTests {
    @Test func slotsMatchRedis() {
        // Values from `CLUSTER KEYSLOT` on a real server.
        #expect(ClusterSlot.of("foo") == 12182)
        #expect(ClusterSlot.of("hello") == 866)
        #expect(ClusterSlot.of("123456789") == 12739)
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("{user1000}.followers"))
        #expect(ClusterSlot.of("rg:{q:tasks}:state") == ClusterSlot.of("q:tasks"))
        // An empty tag does not count: the whole key is hashed.
        #expect(ClusterSlot.of("a{}b") != ClusterSlot.of(""))
        #expect(ClusterSlot.of("{}") == ClusterSlot.of("{}"))
    }

    @Test func commandsNameTheirSlot() {
        #expect(RedisCommand("GET", "foo").clusterSlot == 12182)
        #expect(RedisCommand("PING").clusterSlot == nil)
        #expect(RedisCommand("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "foo", ">").clusterSlot == 12182)
        #expect(RedisCommand("XREAD", "BLOCK", "10", "STREAMS", "hello", "$").clusterSlot == 866)
        #expect(RedisCommand("XGROUP", "CREATE", "foo", "g", "$").clusterSlot == 12182)
        #expect(RedisCommand.script(RedisScript("return 1"), keys: ["foo"], arguments: ["x"]).clusterSlot == 12182)
        #expect(RedisCommand.script(RedisScript("return 1"), keys: []).clusterSlot == nil)
    }

    @Test func clusterURLs() throws {
        let configuration = try RedisConfiguration(url: "redis+cluster://grid:secret@10.0.0.1:7000,10.0.0.2:7001?pool=2&wait=1&waitTimeout=250")
        #expect(configuration.isCluster)
        #expect(configuration.clusterSeeds == [.tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 7001)])
        #expect(configuration.username == "grid" && configuration.password == "secret")
        #expect(configuration.acknowledgeReplicas == 1 && configuration.acknowledgeTimeout == .milliseconds(250))
        #expect(configuration.redactedURL == "redis+cluster://grid:***@10.0.0.1:7000,10.0.0.2:7001")
        #expect(try RedisConfiguration(url: "redis://10.0.0.1:7000?cluster=1").clusterSeeds == [.tcp(host: "10.0.0.1", port: 7000)])
        #expect(try !RedisConfiguration(url: "redis://10.0.0.1:7000").isCluster)
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://a:1,b:2") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+cluster://a:1/3") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+cluster://a:1?wait=x") }
    }

    @Test func redirectsAreRead() {
        guard case .moved(let slot, let node)? = ClusterRedirect(message: "MOVED 3999 127.0.0.1:6381") else { Issue.record("MOVED"); return }
        #expect(slot == 3999 && node == ClusterNode(host: "127.0.0.1", port: 6381))
        guard case .ask(let asked)? = ClusterRedirect(message: "ASK 3999 [::1]:6381") else { Issue.record("ASK"); return }
        #expect(asked == ClusterNode(host: "::1", port: 6381))
        guard case .retryLater? = ClusterRedirect(message: "CLUSTERDOWN The cluster is down") else { Issue.record("CLUSTERDOWN"); return }
        #expect(ClusterRedirect(message: "ERR wrong number of arguments") == nil)
    }
}

/// Against a real 3-master, 3-replica cluster started for this suite.
@Suite(.serialized) struct RedisClusterTests {
    @Test func pipelinesSpanNodesAndKeepTheirOrder() async throws {
        let cluster = try await RedisTestCluster.start()
        let client = try RedisClient(url: cluster.url)
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        var writes: [RedisCommand] = []
        for index in 0..<600 { writes.append(RedisCommand("SET", RedisArgument("\(prefix)\(index)"), RedisArgument("v\(index)"))) }
        let written = try await client.pipeline(writes)
        #expect(written.allSatisfy { $0.string == "OK" })
        // The keys really are spread: every master holds some.
        var perMaster: [Int: Int] = [:]
        for index in 0..<600 { perMaster[try await cluster.master(ofSlot: ClusterSlot.of("\(prefix)\(index)")), default: 0] += 1 }
        #expect(perMaster.count == 3)
        let reads = try await client.pipeline((0..<600).map { RedisCommand("GET", RedisArgument("\(prefix)\($0)")) })
        #expect(reads.map(\.string) == (0..<600).map { "v\($0)" })
        // Scripts are loaded on each node they run on; keys of one tag share a node.
        let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])")
        for tag in 0..<12 {
            let reply = try await client.evalScript(script, keys: [RedisArgument("\(prefix){t\(tag)}:a"), RedisArgument("\(prefix){t\(tag)}:n")], arguments: ["x"])
            #expect(reply.int == 1)
        }
        // A call across slots is refused by the server, not hidden.
        await #expect(throws: RedisError.self) { try await client.send("MGET", RedisArgument("\(prefix)1"), RedisArgument("\(prefix)2{other}")) }
        #expect(try await client.scanKeys(matching: "\(prefix)*").count == 600 + 24)
        // Server settings go to every node, replicas too.
        let fresh = try RedisClient(url: cluster.url)
        defer { fresh.shutdown() }
        #expect(try await fresh.sendToEveryNode(RedisCommand("PING")).count == 6)
    }

    @Test func askAndMovedDuringASlotMigration() async throws {
        let cluster = try await RedisTestCluster.start()
        let client = try RedisClient(url: cluster.url)
        defer { client.shutdown() }
        let key = "\(TestRedis.uniquePrefix()){migrating}"
        let slot = ClusterSlot.of(key)
        try await client.send("SET", RedisArgument(key), "before")  // the client now knows the slot's owner
        let source = try await cluster.master(ofSlot: slot)
        let masters = Set(try await cluster.alivePorts.asyncCompactMap { port in
            (try? await cluster.node(port, "ROLE").array?.first?.string) == "master" ? port : nil
        })
        let target = try #require(masters.subtracting([source]).first)
        let sourceID = try #require(try await cluster.node(source, "CLUSTER", "MYID").string)
        let targetID = try #require(try await cluster.node(target, "CLUSTER", "MYID").string)
        _ = try await cluster.node(target, "CLUSTER", "SETSLOT", RedisArgument(slot), "IMPORTING", RedisArgument(sourceID))
        _ = try await cluster.node(source, "CLUSTER", "SETSLOT", RedisArgument(slot), "MIGRATING", RedisArgument(targetID))
        _ = try await cluster.node(source, "MIGRATE", "127.0.0.1", RedisArgument(target), RedisArgument(key), "0", "5000")
        // Mid-migration: the source answers ASK; the client asks the target once.
        #expect(try await client.send("GET", RedisArgument(key)).string == "before")
        let dedicated = client.dedicatedConnection()
        defer { dedicated.close() }
        #expect(try await dedicated.send("GET", RedisArgument(key)).string == "before")
        for port in masters {
            _ = try await cluster.node(port, "CLUSTER", "SETSLOT", RedisArgument(slot), "NODE", RedisArgument(targetID))
        }
        // Done: the source answers MOVED; the client follows and learns the new owner.
        try await client.send("SET", RedisArgument(key), "after")
        #expect(try await cluster.node(target, "GET", RedisArgument(key)).string == "after")
        #expect(try await dedicated.send("GET", RedisArgument(key)).string == "after")
    }

    @Test func blockingReadsWaitOnTheStreamsNode() async throws {
        let cluster = try await RedisTestCluster.start()
        let client = try RedisClient(url: cluster.url)
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        let streams = (0..<3).map { "\(prefix){s\($0)}" }
        for stream in streams {
            let dedicated = client.dedicatedConnection()
            defer { dedicated.close() }
            async let read = dedicated.send(["XREAD", "BLOCK", "5000", "STREAMS", RedisArgument(stream), "$"], blockingFor: .seconds(5))
            try await Task.sleep(for: .milliseconds(150))
            try await client.send("XADD", RedisArgument(stream), "*", "f", "v")
            let reply = try await read
            #expect(reply.array?.first?.array?.first?.string == stream)
        }
    }

    @Test func aMastersFailoverIsWaitedOut() async throws {
        let cluster = try await RedisTestCluster.start()
        let client = try RedisClient(url: cluster.url)
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        let keys = (0..<60).map { "\(prefix)k\($0)" }
        _ = try await client.pipeline(keys.map { RedisCommand("SET", RedisArgument($0), "1") })
        let victim = try await cluster.master(ofSlot: ClusterSlot.of(keys[0]))
        let dedicated = client.dedicatedConnection()
        defer { dedicated.close() }
        cluster.kill(port: victim)
        let clock = ContinuousClock()
        let started = clock.now
        // Every key, including those the dead master served, is writable again once a replica
        // has taken over; the calls wait for that instead of failing.
        let replies = try await client.pipeline(keys.map { RedisCommand("INCR", RedisArgument($0)) })
        let recovered = clock.now - started
        print("failover: writes to the dead master's slots resumed after \(recovered)")
        #expect(replies.allSatisfy { $0.int == 2 || $0.int == 1 })  // 1: an acknowledged write lost with the master
        #expect(recovered < .seconds(5), "failover took \(recovered)")
        #expect(try await dedicated.send("GET", RedisArgument(keys[0])).string != nil)
        try await cluster.waitUntilHealthy()
    }

    @Test func durableWritesWaitForReplicas() async throws {
        let cluster = try await RedisTestCluster.start()
        let client = try RedisClient(url: cluster.url + "?wait=1&waitTimeout=1000")
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        let replies = try await client.pipeline((0..<30).map { RedisCommand("SET", RedisArgument("\(prefix)\($0)"), "v") }, durable: true)
        #expect(replies.allSatisfy { $0.string == "OK" })
        // Each master has one replica: asking for two cannot be met, and says so.
        let greedy = try RedisClient(url: cluster.url + "?wait=2&waitTimeout=100")
        defer { greedy.shutdown() }
        await #expect { try await greedy.sendDurable(RedisCommand("SET", RedisArgument("\(prefix)x"), "v")) } throws: { error in
            (error as? RedisError)?.kind == .notReplicated
        }
        // Not durable: no WAIT, no error.
        try await greedy.send("SET", RedisArgument("\(prefix)y"), "v")
    }
}

extension Array {
    func asyncCompactMap<T>(_ transform: (Element) async throws -> T?) async rethrows -> [T] {
        var result: [T] = []
        for element in self { if let value = try await transform(element) { result.append(value) } }
        return result
    }
}
