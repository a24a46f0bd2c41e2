import ArgumentParser
import BlobSealing
import Foundation
import RadGridCLI
import RedisClient

/// `radgridctl keys`: the blob key file the gateways seal with and the workers and portals
/// open with. Never prints key bytes. Creating and rotating are administrative actions,
/// recorded in the `admin` audit chain (key ids only).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "The blob key file: create it, rotate its current key, list its key ids.",
        subcommands: [Init.self, Rotate.self, Show.self]
    )

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key file with one random key (mode 0600); an existing file is never replaced.")
        @OptionGroup var redis: RedisOptions
        @Option(help: "The key file.") var file: String
        @Option(help: "Id of the first key.") var id = "k1"

        func run() async throws {
            let current: String
            do {
                let keyring = try BlobKeyring.createFile(at: file, keyID: id)
                current = keyring.currentKeyID
                print("created \(file) with key \(current) (mode 0600)")
            } catch let error as BlobSealingError {
                throw CommandFailure(error)
            }
            try await KeysCommand.audit("admin.keys.created", file: file, current: current, redis: redis)
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a random key and make it current: new blobs are sealed under it, older ones stay readable.",
            discussion: "Running gateways, workers and portals re-read the file within seconds of the change; keep every old key while blobs sealed under it may exist."
        )
        @OptionGroup var redis: RedisOptions
        @Option(help: "The key file.") var file: String
        @Option(help: "Id of the new key (default k<N+1>).") var id: String?

        func run() async throws {
            let added: String
            do {
                added = try BlobKeyring.rotate(file: file, newKeyID: id)
                print("added key \(added) to \(file); it is now current")
            } catch let error as BlobSealingError {
                throw CommandFailure(error)
            }
            try await KeysCommand.audit("admin.keys.rotated", file: file, current: added, redis: redis)
        }
    }

    /// The change in the `admin` chain: which file (its name) and which key id is current.
    static func audit(_ action: String, file: String, current: String, redis: RedisOptions) async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        try await AdminAudit.record(action, details: "file=\(URL(fileURLWithPath: file).lastPathComponent);current=\(current)", client: client, prefix: redis.keyPrefix)
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the file's key ids and which one is current (never the keys).")
        @Option(help: "The key file.") var file: String
        @Flag(help: "JSON output ({\"current\": ID, \"keys\": [ID, …]}).") var json = false

        func run() async throws {
            let keyring: BlobKeyring
            do {
                keyring = try BlobKeyring.load(path: file)
            } catch let error as BlobSealingError {
                throw CommandFailure(error)
            }
            let current = keyring.currentKeyID
            if json {
                // Ids are limited to A-Z a-z 0-9 . _ - : nothing to escape.
                print("{\"current\": \"\(current)\", \"keys\": [\(keyring.keyIDs.map { "\"\($0)\"" }.joined(separator: ", "))]}")
                return
            }
            for id in keyring.keyIDs { print(id == current ? "\(id)  (current)" : id) }
        }
    }
}
