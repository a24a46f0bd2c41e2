import Foundation
import RadGridCore
import RedisClient
import TaskQueue
import TestSupport
import Testing

enum RadGridCtlBinary {
    static var path: String? {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["RADGRID_BIN_DIR"] { candidates.append(dir + "/radgridctl") }
        candidates.append(Corpus.packageRoot.appendingPathComponent(".build/debug/radgridctl").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs radgridctl and returns (exit code, output).
    static func run(_ arguments: [String]) throws -> (Int32?, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("radgridctl-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess(executable: try #require(path), arguments: arguments, outputPath: output)
        let code = process.wait(timeout: .seconds(30))
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}

@Suite("radgridctl queues and dlq", .enabled(if: RadGridCtlBinary.path != nil, "radgridctl is not built (swift build --product radgridctl, or set RADGRID_BIN_DIR)"))
struct QueueCLITests {
    @Test func dlqListShowRetryPurgeAndQueues() async throws {
        let url = try await TestRedis.url()
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let prefix = TestRedis.uniquePrefix("cli")
        let queue = TaskQueue(client: client, name: "tasks", configuration: TaskQueueConfiguration(prefix: KeyPrefix(prefix), maxAttempts: 1))
        try await queue.enqueue([TaskSpec(key: "s1/i1/decode", payload: Array("p1".utf8), lane: .urgent), TaskSpec(key: "s1/i2/decode", lane: .bulk)])
        for task in try await queue.claim(consumer: "c", count: 2).tasks {
            try await queue.fail(task, error: "dicom.truncated: element at offset 132")
        }
        let common = ["--redis", url, "--prefix", prefix]

        let (listCode, list) = try RadGridCtlBinary.run(["dlq", "list"] + common)
        #expect(listCode == 0)
        #expect(list.contains("s1/i1/decode") && list.contains("s1/i2/decode") && list.contains("attempts-exhausted"))

        let (jsonCode, json) = try RadGridCtlBinary.run(["dlq", "list", "--json"] + common)
        #expect(jsonCode == 0)
        let letters = try JSONDecoder().decode([DeadLetter].self, from: Data(json.utf8))
        #expect(letters.count == 2)
        let urgent = try #require(letters.first { $0.key == "s1/i1/decode" })

        let (showCode, show) = try RadGridCtlBinary.run(["dlq", "show", urgent.id] + common)
        #expect(showCode == 0)
        #expect(show.contains("dicom.truncated: element at offset 132"))
        #expect(show.contains("payload:     2 bytes"))
        #expect(!show.contains("p1"))

        let (queuesCode, queuesJSON) = try RadGridCtlBinary.run(["queues", "--json"] + common)
        #expect(queuesCode == 0)
        let stats = try JSONDecoder().decode(QueueStats.self, from: Data(queuesJSON.utf8))
        #expect(stats.deadLetters == 2)
        #expect(stats.lanes.first { $0.lane == "urgent" }?.deadLetters == 1)

        let (retryCode, retry) = try RadGridCtlBinary.run(["dlq", "retry", urgent.id] + common)
        #expect(retryCode == 0)
        #expect(retry.contains("retried 1"))
        let again = try #require(try await queue.claim(consumer: "c", count: 1).tasks.first)
        #expect(again.key == "s1/i1/decode")
        #expect(again.payload == Array("p1".utf8))

        let (purgeCode, purge) = try RadGridCtlBinary.run(["dlq", "purge", "--all"] + common)
        #expect(purgeCode == 0)
        #expect(purge.contains("purged 1"))
        #expect(try await queue.deadLetters().isEmpty)
        let (missingCode, _) = try RadGridCtlBinary.run(["dlq", "show", "1-1"] + common)
        #expect(missingCode != 0)
    }
}
