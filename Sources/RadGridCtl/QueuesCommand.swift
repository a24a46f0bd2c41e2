import ArgumentParser
import Foundation
import RadGridCLI
import RadGridCore
import RedisClient
import TaskQueue

/// Where the queue lives: shared by `queues` and `dlq`.
struct QueueOptions: ParsableArguments {
    @OptionGroup var redis: RedisOptions
    @Option(help: "Queue name.") var queue = "tasks"

    func open() throws -> TaskQueue {
        let client = try RedisClient(url: redis.resolvedURL)
        return TaskQueue(client: client, name: queue, configuration: TaskQueueConfiguration(prefix: redis.keyPrefix))
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    print(try JSONOutput.string(value))
}

struct QueuesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queues", abstract: "Depth, in-flight, oldest wait, delayed retries and dead letters per lane.")

    @OptionGroup var options: QueueOptions
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let queue = try options.open()
        defer { queue.client.shutdown() }
        let stats = try await queue.stats()
        if json { return try printJSON(stats) }
        print("queue \(stats.queue)  (leases held: \(stats.leases), open fan-in groups: \(stats.openGroups), dead letters: \(stats.deadLetters))")
        let header = ["lane", "depth", "pending", "oldest", "delayed", "dead"]
        print(header.map { $0.padding(toLength: 10, withPad: " ", startingAt: 0) }.joined())
        for lane in stats.lanes {
            let cells = [lane.lane, "\(lane.depth)", "\(lane.pending)", Self.age(lane.oldestAgeMs), "\(lane.delayed)", "\(lane.deadLetters)"]
            print(cells.map { $0.padding(toLength: 10, withPad: " ", startingAt: 0) }.joined())
        }
    }

    static func age(_ milliseconds: Int64) -> String {
        if milliseconds == 0 { return "-" }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds < 120_000 { return String(format: "%.1fs", Double(milliseconds) / 1000) }
        if milliseconds < 7_200_000 { return "\(milliseconds / 60_000)m" }
        return "\(milliseconds / 3_600_000)h"
    }
}
