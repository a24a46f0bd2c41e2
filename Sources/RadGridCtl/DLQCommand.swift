import ArgumentParser
import GridContract
import Foundation
import RadGridCore
import TaskQueue

/// `radgridctl dlq list|show|retry|purge`: the dead-letter stream of a queue.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect, retry and purge dead-lettered tasks.",
        subcommands: [List.self, Show.self, Retry.self, Purge.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, oldest first (payloads are not shown).")
        @OptionGroup var options: QueueOptions
        @Option(help: "Most entries to list.") var count = 50
        @Option(help: "Start after this entry id (paging).") var after: String?
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let queue = try options.open()
            defer { queue.client.shutdown() }
            let letters = try await queue.deadLetters(count: count, after: after)
            if json { return try printJSON(letters) }
            if letters.isEmpty { print("no dead letters in queue \(options.queue)"); return }
            for letter in letters {
                print("\(letter.id)  \(letter.lane.padding(toLength: 8, withPad: " ", startingAt: 0)) \(letter.reason)  deliveries=\(letter.deliveries) failures=\(letter.failures)  key=\(letter.key)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter with its reason and last error.")
        @OptionGroup var options: QueueOptions
        @Argument(help: "Entry id.") var id: String
        @Flag(help: "Also print the payload (base64). It may hold patient data.") var payload = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let queue = try options.open()
            defer { queue.client.shutdown() }
            guard let letter = try await queue.deadLetter(id: id) else { throw ValidationError("no dead letter \(id) in queue \(options.queue)") }
            if json { return try printJSON(letter) }
            print("id:          \(letter.id)")
            print("key:         \(letter.key)")
            print("lane:        \(letter.lane)")
            print("reason:      \(letter.reason)")
            print("last error:  \(letter.error)")
            print("deliveries:  \(letter.deliveries)   failures: \(letter.failures)")
            if let group = letter.group { print("group:       \(group)") }
            print("enqueued:    \(Date(timeIntervalSince1970: Double(letter.enqueuedAtMs) / 1000))")
            print("dead since:  \(Date(timeIntervalSince1970: Double(letter.deadAtMs) / 1000))")
            print("payload:     \(letter.payloadSize) bytes")
            if payload { print(Data(letter.payload).base64EncodedString()) }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-enqueue dead letters with fresh attempts (and remove them from the stream). A study's task sends its study through the pipeline again (a requeue, audited).")
        @OptionGroup var options: QueueOptions
        @Argument(help: "Entry ids.") var ids: [String] = []
        @Flag(help: "Retry every dead letter.") var all = false

        func validate() throws {
            if ids.isEmpty != all { throw ValidationError("give entry ids or --all") }
        }

        func run() async throws {
            let queue = try options.open()
            defer { queue.client.shutdown() }
            var targets = ids
            if all {
                var after: String?
                while true {
                    let page = try await queue.deadLetters(count: 500, after: after)
                    if page.isEmpty { break }
                    targets += page.map(\.id)
                    after = page.last?.id
                }
            }
            var retried = 0, duplicates = 0, missing = 0
            var studies: [String] = []
            for id in targets {
                // A task of the grid's studies: the study goes through the pipeline again (the
                // task alone would run into a study that has moved on).
                if let letter = try await queue.deadLetter(id: id), let task = try? GridTask.decode(letter.payload) {
                    let outcome = try await StudyCommand.Requeue.requeue(task.study, reason: "dlq-retry", actor: AdminAudit.operatorName, client: queue.client, prefix: options.redis.keyPrefix, queueShards: options.redis.queueShards)
                    studies.append(outcome.description)
                    // Requeued, or the study went on without this task: the dead letter is settled.
                    if case .unknown = outcome {} else { _ = try await queue.purgeDeadLetters(ids: [id]) }
                    continue
                }
                switch try await queue.retryDeadLetter(id: id) {
                case .enqueued?: retried += 1
                case .duplicate?: duplicates += 1
                case nil: missing += 1
                }
            }
            try await AdminAudit.record("admin.dlq.retried", details: "queue=\(queue.name);retried=\(retried);studies=\(studies.count);missing=\(missing)" + (all ? ";all" : ""),
                                        client: queue.client, prefix: options.redis.keyPrefix)
            for line in Set(studies).sorted() { print(line) }
            print("retried \(retried)" + (duplicates > 0 ? ", \(duplicates) already queued again" : "") + (missing > 0 ? ", \(missing) not found" : "") + (studies.isEmpty ? "" : ", \(studies.count) study task(s) handled by study requeue"))
            if missing > 0 && retried == 0 && duplicates == 0 && studies.isEmpty { throw ExitCode(1) }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters for good.")
        @OptionGroup var options: QueueOptions
        @Argument(help: "Entry ids.") var ids: [String] = []
        @Flag(help: "Delete every dead letter.") var all = false

        func validate() throws {
            if ids.isEmpty != all { throw ValidationError("give entry ids or --all") }
        }

        func run() async throws {
            let queue = try options.open()
            defer { queue.client.shutdown() }
            let removed = all ? try await queue.purgeAllDeadLetters() : try await queue.purgeDeadLetters(ids: ids)
            try await AdminAudit.record("admin.dlq.purged", details: "queue=\(queue.name);purged=\(removed)" + (all ? ";all" : ";ids=\(ids.prefix(50).joined(separator: ","))"),
                                        client: queue.client, prefix: options.redis.keyPrefix)
            print("purged \(removed)")
        }
    }
}
