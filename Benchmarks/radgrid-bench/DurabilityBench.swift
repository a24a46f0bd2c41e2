import ArgumentParser
import Foundation
import RadGridCore
import RedisClient
import Synchronization

/// What asynchronous replication loses when a master dies, and what `WAIT` costs.
///
/// Against a Redis Cluster it owns (the master of the measured slot is shut down): writers add
/// unique ids to a set (durable or not) and remember the ones acknowledged; the master of the
/// set's slot is stopped without saving (`SHUTDOWN NOSAVE NOW FORCE`, no wait for replicas),
/// a replica takes over, the writers go on, and every acknowledged id is looked for on the new
/// master. Before the kill, the same writes measure throughput with and without `WAIT`.
struct DurabilityBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "durability",
                                                    abstract: "Acknowledged writes lost in a master's failover, with and without WAIT, and WAIT's cost.")

    @Option(help: "redis+cluster:// URL of a cluster this run may break (one master is shut down).") var cluster: String
    @Option(help: "Replicas that must acknowledge a durable write.") var replicas = 1
    @Option(help: "Concurrent writers.") var writers = 8
    @Option(help: "Commands per pipeline.") var pipeline = 20
    @Option(help: "Seconds of each throughput phase.") var seconds = 3.0
    @Flag(help: "Acknowledge the failover writes with WAIT (else plain writes).") var durable = false
    @Option(help: "Milliseconds the master's replica lags (is stopped) before the master dies; 0: no lag. The replica must run on this machine.") var lagMs = 300
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let plain = try RedisClient(url: cluster)
        let acknowledged = try RedisClient(url: cluster + (cluster.contains("?") ? "&" : "?") + "wait=\(replicas)&waitTimeout=1000")
        defer { plain.shutdown(); acknowledged.shutdown() }
        let run = "dur\(UInt32.random(in: 0...UInt32.max))"

        // 1. Cost: the same pipelines of SADD, plain and acknowledged.
        let plainRate = try await throughput(plain, durable: false, key: "\(run):{cost-plain}")
        let durableRate = try await throughput(acknowledged, durable: true, key: "\(run):{cost-durable}")
        print(String(format: "writes/s  plain %.0f  with WAIT %d: %.0f  (%.2f×)", plainRate.rate, replicas, durableRate.rate, durableRate.rate / max(plainRate.rate, 1)))
        print(String(format: "pipeline round trip  plain %.2f ms  with WAIT %.2f ms", plainRate.meanMs, durableRate.meanMs))

        // 2. Loss: writers run through a master's death.
        let key = "\(run):{failover}"
        let client = durable ? acknowledged : plain
        let slot = ClusterSlot.of(key)
        let master = try await masterAddress(plain, slot: slot)
        let shared = Shared()
        let pipeline = self.pipeline
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<writers {
                group.addTask {
                    while !shared.stop.load(ordering: .relaxed) {
                        let ids = (0..<pipeline).map { _ in shared.next.add(1, ordering: .relaxed).newValue }
                        let commands = ids.map { RedisCommand("SADD", RedisArgument(key), RedisArgument($0)) }
                        do {
                            let replies = try await client.pipeline(commands, durable: durable)
                            let ok = zip(ids, replies).filter { $0.1.int != nil }.map(\.0)
                            shared.acked.withLock { $0 += ok }
                        } catch {
                            // Lost mid-flight or not replicated: not acknowledged, may or may not be there.
                            shared.refused.add(1, ordering: .relaxed)
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
            try await Task.sleep(for: .seconds(1))
            // A replica that lags (here: stopped for `lagMs`, as a slow link would hold it
            // back), then the master dies without waiting for it to catch up.
            let node = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: master.host, port: master.port), reconnectWait: .zero))
            let replicaPID = lagMs > 0 ? try await replicaProcess(of: node) : nil
            if let replicaPID { kill(replicaPID, SIGSTOP) }
            try await Task.sleep(for: .milliseconds(Int64(lagMs)))
            do {
                try await node.send("SHUTDOWN", "NOSAVE", "NOW", "FORCE")
            } catch {
                // The server closing the connection is SHUTDOWN succeeding; anything else throws.
                guard let redisError = error as? RedisError, redisError.kind == .connectionLost || redisError.kind == .closed else { throw error }
            }
            node.shutdown()
            if let replicaPID { kill(replicaPID, SIGCONT) }
            let killedAt = ContinuousClock.now
            // Until the slot is served again, then one more second of writes.
            while try await masterAddress(plain, slot: slot) == master {
                guard ContinuousClock.now - killedAt < .seconds(30) else { throw ValidationError("no replica took over slot \(slot) within 30 s") }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(1))
            shared.stop.store(true, ordering: .relaxed)
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let present = Set(try await plain.send("SMEMBERS", RedisArgument(key)).array?.compactMap { $0.string.flatMap(Int.init) } ?? [])
        let ackedIDs = shared.acked.withLock { $0 }
        let refusedCount = shared.refused.load(ordering: .relaxed)
        let lost = ackedIDs.filter { !present.contains($0) }.count
        print("failover (\(durable ? "WAIT \(replicas)" : "plain")): \(ackedIDs.count) writes acknowledged, \(lost) of them lost; \(refusedCount) pipelines refused or cut; \(elapsed)")
        if json {
            let object: [String: Any] = [
                "durable": durable, "replicas": replicas, "replica_lag_ms": lagMs, "writers": writers, "pipeline": pipeline,
                "writes_per_s_plain": (plainRate.rate * 10).rounded() / 10, "writes_per_s_wait": (durableRate.rate * 10).rounded() / 10,
                "wait_throughput_ratio": ((durableRate.rate / max(plainRate.rate, 1)) * 1000).rounded() / 1000,
                "pipeline_ms_plain": (plainRate.meanMs * 100).rounded() / 100, "pipeline_ms_wait": (durableRate.meanMs * 100).rounded() / 100,
                "failover_acknowledged": ackedIDs.count, "failover_lost": lost, "failover_refused_pipelines": refusedCount,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    struct Rate { var rate: Double; var meanMs: Double }

    /// What the writers share.
    final class Shared: Sendable {
        let acked = Mutex<[Int]>([])
        let refused = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let next = Atomic<Int>(0)
        let counts = Mutex((writes: 0, pipelines: 0, nanoseconds: UInt64(0)))
    }

    func throughput(_ client: RedisClient, durable: Bool, key: String) async throws -> Rate {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let shared = Shared()
        let pipeline = self.pipeline
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var id = writer * 100_000_000
                    while ContinuousClock.now < deadline {
                        let commands = (0..<pipeline).map { _ -> RedisCommand in
                            id += 1
                            return RedisCommand("SADD", RedisArgument(key), RedisArgument(id))
                        }
                        let start = WallClock.monotonicNanoseconds()
                        _ = try await client.pipeline(commands, durable: durable)
                        let spent = WallClock.monotonicNanoseconds() - start
                        shared.counts.withLock { $0.writes += commands.count; $0.pipelines += 1; $0.nanoseconds += spent }
                    }
                }
            }
            try await group.waitForAll()
        }
        let c = shared.counts.withLock { $0 }
        return Rate(rate: Double(c.writes) / seconds, meanMs: Double(c.nanoseconds) / Double(max(c.pipelines, 1)) / 1e6)
    }

    struct Node: Equatable { var host: String; var port: Int }

    /// The process id of the master's first replica (`INFO replication`, then its `INFO server`).
    func replicaProcess(of master: RedisClient) async throws -> pid_t? {
        let info = try await master.send("INFO", "replication").string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("slave0:") }) else { return nil }
        var fields: [String: String] = [:]
        for pair in line.dropFirst("slave0:".count).split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let host = fields["ip"], let port = fields["port"].flatMap(Int.init) else { return nil }
        let replica = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: host, port: port), reconnectWait: .zero))
        defer { replica.shutdown() }
        let server = try await replica.send("INFO", "server").string ?? ""
        return server.split(whereSeparator: \.isNewline).first { $0.hasPrefix("process_id:") }
            .flatMap { pid_t($0.dropFirst("process_id:".count).trimmingCharacters(in: .whitespaces)) }
    }

    /// The master of `slot` as the cluster's map says now.
    func masterAddress(_ client: RedisClient, slot: Int) async throws -> Node {
        for range in try await client.send("CLUSTER", "SLOTS").array ?? [] {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                  (start...end).contains(Int64(slot)), let master = parts[2].array, let port = master[1].int else { continue }
            return Node(host: master[0].string ?? "127.0.0.1", port: Int(port))
        }
        throw ValidationError("no master serves slot \(slot)")
    }
}
