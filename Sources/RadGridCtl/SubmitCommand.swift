import ArgumentParser
import Audit
import BlobSealing
import DICOM
import Foundation
import GridContract
import StudyLifecycle
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Gateway
import RadGridCLI
import RadGridCore
import RedisClient
import StudyStore

/// `radgridctl submit PATH... --site S`: send DICOM files from folders into the grid and
/// commit each study. Through a gateway (`--gateway URL` + token, DICOMweb STOW-RS, as a
/// hospital's edge would) or, for staff with Redis access, straight into Redis.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "Submit DICOM files or folders as studies.")

    @OptionGroup var redis: RedisOptions
    @Argument(help: "DICOM files or folders (searched recursively).") var paths: [String]
    @Option(help: "Sending site code (direct mode).") var site: String?
    @Option(help: "stat, urgent, routine or bulk.") var priority: String = "routine"
    @Option(help: "Gateway base URL, e.g. http://127.0.0.1:8104 (STOW-RS mode).") var gateway: String?
    @Option(help: "Site bearer token for the gateway (else RADGRID_TOKEN).") var token: String?
    @Option(help: "Instances per STOW-RS request.") var batch: Int = 16
    @Flag(help: "Do not commit the studies after sending.") var noCommit = false
    @Option(help: "Direct mode: the blob key file the grid seals instances with (else RADGRID_BLOB_KEYS; without either, stored unencrypted).") var blobKeys: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        guard let priority = Priority(rawValue: priority) else { throw ValidationError("priority must be stat, urgent, routine or bulk") }
        let files = try DICOMFileFinder.find(paths)
        guard !files.isEmpty else { throw ValidationError("no files found under the given paths") }
        let progress = Progress(total: files.count, enabled: !json)
        let summary: SubmitSummary
        if let gateway {
            guard let token = token ?? ProcessEnvironment.value("RADGRID_TOKEN") else { throw ValidationError("--token or RADGRID_TOKEN is required with --gateway") }
            summary = try await StowClient(baseURL: gateway, token: token, batch: max(1, batch)).submit(files, priority: priority, commit: !noCommit, progress: progress)
        } else {
            guard let site else { throw ValidationError("--site is required without --gateway") }
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let keyring: BlobKeyring?
            do { keyring = try BlobKeyring.configured(option: blobKeys) } catch let error as BlobSealingError { throw CommandFailure(error) }
            summary = try await DirectSubmitter(client: client, prefix: redis.keyPrefix, site: site, keyring: keyring)
                .submit(files, priority: priority, commit: !noCommit, progress: progress)
        }
        progress.finish()
        if json {
            print(try JSONOutput.string(summary))
        } else {
            print("\(summary.stored) stored, \(summary.duplicates) already present, \(summary.failed) failed, \(summary.studies.count) studies\(noCommit ? "" : " committed")")
            for failure in summary.failures.prefix(20) { print("  failed: \(failure)") }
        }
        if summary.failed > 0 { throw ExitCode(1) }
    }
}

struct SubmitSummary: Encodable {
    var stored = 0
    var duplicates = 0
    var failed = 0
    var studies: [String] = []
    var failures: [String] = []
}

/// Finds candidate DICOM files: regular files under the paths, skipping hidden ones and
/// anything too short to hold a data set.
enum DICOMFileFinder {
    static func find(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ValidationError("no such file or folder: \(path)") }
            if !isDirectory.boolValue { files.append(path); continue }
            guard let walker = manager.enumerator(atPath: path) else { continue }
            for case let relative as String in walker where !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                let full = (path as NSString).appendingPathComponent(relative)
                var nested: ObjCBool = false
                if manager.fileExists(atPath: full, isDirectory: &nested), !nested.boolValue { files.append(full) }
            }
        }
        return files.sorted()
    }
}

/// A one-line progress bar on stderr (only on a terminal).
final class Progress: @unchecked Sendable {
    let total: Int
    let enabled: Bool
    private var done = 0
    private let started = Date()
    private let lock = NSLock()

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
    }

    func advance(by count: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        done += count
        guard enabled else { return }
        let width = 30
        let filled = total == 0 ? width : width * done / total
        let rate = Double(done) / max(Date().timeIntervalSince(started), 0.001)
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d instances, %.1f/s", bar, done, total, rate).utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Staff path: the gateway's own intake code, writing straight into Redis.
struct DirectSubmitter {
    let client: RedisClient
    let prefix: KeyPrefix
    let site: String
    /// Seals instances like the gateway does (nil: stored as they are).
    var keyring: BlobKeyring? = nil

    func submit(_ files: [String], priority: Priority, commit: Bool, progress: Progress) async throws -> SubmitSummary {
        let store = StudyStore(client: client, prefix: prefix, keyring: keyring)
        let intake = InstanceIntake(store: store)
        var summary = SubmitSummary()
        var studies = Set<String>()
        let site = try SiteID(self.site)
        // A few files at a time, stored together (one round trip for each group).
        var start = 0
        while start < files.count {
            let group = files[start..<min(files.count, start + 32)]
            start += group.count
            var names: [String] = []
            var contents: [[UInt8]] = []
            for file in group {
                guard let data = FileManager.default.contents(atPath: file) else {
                    summary.failed += 1
                    summary.failures.append("\(file): cannot read the file")
                    progress.advance()
                    continue
                }
                names.append(file)
                contents.append(Array(data))
            }
            for (file, outcome) in zip(names, await intake.ingest(contents, site: site, priority: priority, expectedStudy: nil)) {
                defer { progress.advance() }
                switch outcome {
                case .stored(let header, _, let outcome):
                    studies.insert(header.study.rawValue)
                    if outcome == .duplicate { summary.duplicates += 1 } else { summary.stored += 1 }
                case .failed(_, _, _, let error):
                    summary.failed += 1
                    summary.failures.append("\(file): \(error.code): \(error.message)")
                }
            }
        }
        summary.studies = studies.sorted()
        if commit {
            let machine = StudyStateMachine()
            for study in summary.studies {
                try await store.handle(.commit(reason: "explicit"), study: try StudyUID(study), actor: AuditActor(.admin, "radgridctl:\(site)"), machine: machine)
            }
        }
        return summary
    }
}

/// Edge path: DICOMweb STOW-RS to a gateway, one request per study batch, then commit.
public struct StowClient: Sendable {
    let baseURL: String
    let token: String
    let batch: Int

    public init(baseURL: String, token: String, batch: Int = 50) {
        self.baseURL = baseURL
        self.token = token
        self.batch = batch
    }

    func submit(_ files: [String], priority: Priority, commit: Bool, progress: Progress) async throws -> SubmitSummary {
        var summary = SubmitSummary()
        // Group by study so each request can go to /studies/{uid}.
        var byStudy: [String: [(String, [UInt8])]] = [:]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                summary.failed += 1
                summary.failures.append("\(file): cannot read the file")
                progress.advance()
                continue
            }
            let bytes = Array(data)
            guard let study = (try? DICOMFile.read(bytes, options: .headerOnly))?.dataSet.string(.studyInstanceUID) else {
                summary.failed += 1
                summary.failures.append("\(file): not a readable DICOM file")
                progress.advance()
                continue
            }
            byStudy[study, default: []].append((file, bytes))
        }
        for (study, instances) in byStudy.sorted(by: { $0.key < $1.key }) {
            var start = 0
            while start < instances.count {
                let chunk = Array(instances[start..<min(start + batch, instances.count)])
                start += chunk.count
                let (status, body) = try await post(path: "/studies/\(study)?priority=\(priority.rawValue)", parts: chunk.map(\.1))
                let failedCount = Self.countFailed(body)
                switch status {
                case 200, 202, 409:
                    summary.stored += chunk.count - failedCount
                    summary.failed += failedCount
                    if failedCount > 0 { summary.failures.append("study \(study): \(failedCount) instance(s) refused (HTTP \(status))") }
                default:
                    summary.failed += chunk.count
                    summary.failures.append("study \(study): HTTP \(status) \(String(decoding: body.prefix(200), as: UTF8.self))")
                }
                progress.advance(by: chunk.count)
            }
            summary.studies.append(study)
            if commit {
                let (status, body) = try await post(path: "/studies/\(study)/commit", parts: nil)
                if status != 200 { summary.failures.append("study \(study): commit failed with HTTP \(status) \(String(decoding: body.prefix(200), as: UTF8.self))") }
            }
        }
        return summary
    }

    static func countFailed(_ body: [UInt8]) -> Int {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let failed = object["00081198"] as? [String: Any], let items = failed["Value"] as? [Any] else { return 0 }
        return items.count
    }

    /// One POST to the gateway: a STOW-RS body of `parts`, or an empty body (commit).
    /// Returns the HTTP status and body.
    public func post(path: String, parts: [[UInt8]]?) async throws -> (Int, [UInt8]) {
        guard let url = URL(string: baseURL + path) else { throw ValidationError("invalid gateway URL") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        var body = Data()
        if let parts {
            let boundary = "radgrid-\(UUID().uuidString)"
            request.setValue("multipart/related; type=\"application/dicom\"; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
            for part in parts {
                body.append(Data("--\(boundary)\r\nContent-Type: application/dicom\r\n\r\n".utf8))
                body.append(contentsOf: part)
                body.append(Data("\r\n".utf8))
            }
            body.append(Data("--\(boundary)--\r\n".utf8))
        }
        let (data, response) = try await URLSession.shared.upload(for: request, from: body)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data))
    }
}
