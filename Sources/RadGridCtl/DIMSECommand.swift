import ArgumentParser
import DIMSE
import DIMSEGateway
import Foundation
import GridContract
import RadGridCLI
import RadGridCore
import RedisClient

/// `radgridctl dimse`: the DICOM network side: result outbox, retries, and a C-ECHO / C-STORE
/// client for checking a site's PACS by hand.
struct DIMSECtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dimse", abstract: "DICOM network: results outbox, retries, C-ECHO and C-STORE to a peer.",
        subcommands: [Outbox.self, Retry.self, Echo.self, Send.self]
    )

    struct Outbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Results waiting to be sent to the sites' PACS, and dead letters.")
        @OptionGroup var redis: RedisOptions
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let (pending, dead) = try await ResultSender(client: client, prefix: redis.keyPrefix, logger: .init(label: "radgridctl")).outbox()
            if json {
                let object: [String: Any] = ["pending": pending.map { ["job": $0.job, "fields": $0.fields] },
                                             "dead": dead.map { ["job": $0.job, "fields": $0.fields] }]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                return
            }
            print("pending: \(pending.count)  dead: \(dead.count)")
            for entry in pending { print("  pending \(entry.job)  attempts=\(entry.fields["attempts"] ?? "0")  error=\(entry.fields["error"] ?? "-")") }
            for entry in dead { print("  dead    \(entry.job)  attempts=\(entry.fields["attempts"] ?? "0")  error=\(entry.fields["error"] ?? "-")") }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send dead-lettered results again (all, or those whose job starts with PREFIX).")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Job prefix, e.g. report:1.2.3 (default: all).") var prefix: String?
        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let count = try await ResultSender(client: client, prefix: redis.keyPrefix, logger: .init(label: "radgridctl")).retryDead(matching: prefix)
            try await AdminAudit.record("admin.outbox.retried", details: "results=\(count)" + (prefix.map { ";prefix=\($0)" } ?? ""), client: client, prefix: redis.keyPrefix)
            print("requeued \(count) result(s)")
        }
    }

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "C-ECHO a DICOM peer (AE@host:port).")
        @Argument(help: "The peer, AE@host:port.") var peer: String
        @Option(help: "Calling AE title.") var aeTitle = "RADGRID"
        func run() async throws {
            var configuration = StorageSCU.Configuration()
            configuration.callingAETitle = aeTitle
            let status = try await StorageSCU(configuration: configuration).echo(try parsePeer(peer))
            print("C-ECHO status \(String(format: "%04X", status))")
            if status != DIMSEStatus.success { throw ExitCode(1) }
        }
    }

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "C-STORE DICOM files to a peer (AE@host:port) in one association.")
        @Argument(help: "The peer, AE@host:port.") var peer: String
        @Argument(help: "Part 10 files.") var files: [String]
        @Option(help: "Calling AE title.") var aeTitle = "RADGRID"
        func run() async throws {
            var configuration = StorageSCU.Configuration()
            configuration.callingAETitle = aeTitle
            let contents = try files.map { path -> [UInt8] in
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
                return Array(data)
            }
            let statuses = try await StorageSCU(configuration: configuration).store(contents, to: try parsePeer(peer))
            for (file, status) in zip(files, statuses) { print("\(String(format: "%04X", status))  \(file)") }
            if statuses.contains(where: { !DIMSEStatus.isSuccess($0) }) { throw ExitCode(1) }
        }
    }
}

/// `AE@host:port`.
func parsePeer(_ text: String) throws -> StorageSCU.Peer {
    guard let at = text.firstIndex(of: "@"), let colon = text.lastIndex(of: ":"), at < colon,
          let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
        throw ValidationError("a peer is AE@host:port")
    }
    let ae = String(text[..<at])
    try SiteNetwork.validate(aeTitle: ae)
    return StorageSCU.Peer(aeTitle: ae, host: String(text[text.index(after: at)..<colon]), port: port)
}
