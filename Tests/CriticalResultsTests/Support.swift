import Audit
import CriticalResults
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GridContract
import RadGridCore
import RedisClient
import Synchronization
import TestSupport

/// A clock the test moves by hand (ms).
final class TestClock: Sendable {
    private let now: Atomic<Int64>
    init(_ start: Int64) { now = Atomic(start) }
    var ms: Int64 { now.load(ordering: .relaxed) }
    func set(_ value: Int64) { now.store(value, ordering: .relaxed) }
    func advance(by delta: Int64) { _ = now.add(delta, ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { [self] in ms } }
}

/// One test's Redis and key prefix.
struct CriticalFixture {
    let client: RedisClient
    let prefix: KeyPrefix

    static func make() async throws -> CriticalFixture {
        CriticalFixture(client: try RedisClient(url: try await TestRedis.url()), prefix: KeyPrefix(TestRedis.uniquePrefix("cr")))
    }

    func store(_ policy: CriticalResultPolicy = .standard) -> CriticalResultStore {
        CriticalResultStore(client: client, prefix: prefix, policy: policy)
    }

    /// Every key under the prefix.
    func keys() async throws -> [String] {
        var cursor = "0", keys: [String] = []
        repeat {
            let reply = try await client.send("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(prefix.value + "*"), "COUNT", "1000")
            cursor = reply.array?.first?.string ?? "0"
            keys += (reply.array?.last?.array ?? []).compactMap(\.string)
        } while cursor != "0"
        return keys.map { String($0.dropFirst(prefix.value.count)) }.sorted()
    }

    func auditActions(study: String? = nil) async throws -> [String] {
        let entries = try await AuditTrail(client: client, prefix: prefix, chain: CriticalResultKeys.auditChain).entries()
        return entries.filter { study == nil || $0.study == study }.map(\.action)
    }
}

/// The Python receiver (Tests/Fixtures/critical/webhook_receiver.py): checks every signature
/// with Python's own HMAC and fails the paths it is told to, a set number of times.
final class WebhookReceiver: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/critical/webhook_receiver.py").path

    let port: Int
    let secret: String
    let logPath: String
    private var process: ChildProcess?

    init(port: Int = ChildProcess.freePort(), secret: String) {
        self.port = port
        self.secret = secret
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-webhooks-\(UUID().uuidString).jsonl").path
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Starts the receiver (again, on the same port) failing `failures[path]` requests per path.
    func start(failures: [String: Int] = [:]) async throws {
        let process = try ChildProcess(executable: "/usr/bin/python3",
                                       arguments: [Self.script, String(port), secret, logPath] + failures.map { "\($0.key)=\($0.value)" })
        self.process = process
        for _ in 0..<200 {
            var request = URLRequest(url: URL(string: url("/health"))!)
            request.timeoutInterval = 1
            if let (_, response) = try? await URLSession.shared.data(for: request), (response as? HTTPURLResponse)?.statusCode == 200 { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSupportError("the webhook receiver did not start")
    }

    func stop() {
        process?.terminate(grace: .seconds(2))
        process = nil
    }

    struct Request {
        var path: String
        var status: Int
        var signatureValid: Bool
        var delivery: String
        var event: String
        var body: [String: Any]
    }

    /// Every request so far, in order.
    func requests() -> [Request] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
            return Request(path: object["path"] as? String ?? "", status: object["status"] as? Int ?? 0,
                           signatureValid: object["signatureValid"] as? Bool ?? false, delivery: object["delivery"] as? String ?? "",
                           event: object["event"] as? String ?? "", body: object["body"] as? [String: Any] ?? [:])
        }
    }
}
