import ArgumentParser
import Foundation
import RadGridCLI
import RadGridCore
import RedisClient

/// `radgridctl ping`: is Redis there, which version, and what does a round trip cost —
/// one command at a time versus pipelined in one batch.
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ping", abstract: "Report the Redis version and round-trip time.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "PINGs to time, one by one and then pipelined.") var count: Int = 1000
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        do {
            let info = try await client.send("INFO", "server").string ?? ""
            let version = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }.map { String($0.dropFirst("redis_version:".count)) } ?? "unknown"
            let report = try await PingReport.measure(client: client, count: count)
            if json {
                let object: [String: Any] = [
                    "redis": client.configuration.redactedURL, "redis_version": version, "count": count,
                    "unpipelined_rtt_ms_p50": report.p50Milliseconds, "unpipelined_rtt_ms_p99": report.p99Milliseconds,
                    "unpipelined_commands_per_s": report.unpipelinedPerSecond, "pipelined_commands_per_s": report.pipelinedPerSecond,
                    "pipelined_us_per_command": report.pipelinedMicrosecondsPerCommand,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("PONG from \(client.configuration.redactedURL) (Redis \(version))")
                print(String(format: "round trip, one at a time: p50 %.3f ms, p99 %.3f ms (%.0f commands/s)", report.p50Milliseconds, report.p99Milliseconds, report.unpipelinedPerSecond))
                print(String(format: "pipelined, %d in one batch: %.2f µs per command (%.0f commands/s, %.1f× faster)", count, report.pipelinedMicrosecondsPerCommand, report.pipelinedPerSecond, report.pipelinedPerSecond / report.unpipelinedPerSecond))
            }
        } catch let error as RedisError {
            throw CommandFailure(error)
        }
    }
}

struct PingReport {
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var unpipelinedPerSecond: Double
    var pipelinedPerSecond: Double
    var pipelinedMicrosecondsPerCommand: Double

    static func measure(client: RedisClient, count: Int) async throws -> PingReport {
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        let start = WallClock.monotonicNanoseconds()
        for _ in 0..<count {
            let before = WallClock.monotonicNanoseconds()
            try await client.send("PING")
            samples.append(WallClock.monotonicNanoseconds() - before)
        }
        let unpipelinedTotal = Double(WallClock.monotonicNanoseconds() - start)
        samples.sort()
        let batch = [RedisCommand](repeating: RedisCommand("PING"), count: count)
        let pipelineStart = WallClock.monotonicNanoseconds()
        let replies = try await client.pipeline(batch)
        let pipelinedTotal = Double(WallClock.monotonicNanoseconds() - pipelineStart)
        guard replies.count == count, replies.allSatisfy({ $0 == .status("PONG") }) else {
            throw RedisError(.unexpectedReply, "pipelined PING returned unexpected replies")
        }
        func percentile(_ p: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1e6 }
        return PingReport(
            p50Milliseconds: percentile(0.5), p99Milliseconds: percentile(0.99),
            unpipelinedPerSecond: Double(count) / (unpipelinedTotal / 1e9),
            pipelinedPerSecond: Double(count) / (pipelinedTotal / 1e9),
            pipelinedMicrosecondsPerCommand: pipelinedTotal / 1e3 / Double(count)
        )
    }
}
