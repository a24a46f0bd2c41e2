import Foundation
@_exported import RadGridCore
import RedisClient
import Synchronization

/// A private redis-server for tests: its own free port, its own temp dir, killed at the end.
///
/// Tests that only need "a Redis" use `TestRedis.url()` (the server `make test` started,
/// from `RADGRID_TEST_REDIS_URL`, or one started on demand). Tests that restart or kill
/// the server start their own with `RedisTestServer.start()`.
public final class RedisTestServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    public let appendOnly: Bool
    private let lock = NSLock()
    private var process: ChildProcess?

    public var url: String { "redis://127.0.0.1:\(port)" }

    private init(port: Int, directory: URL, appendOnly: Bool) {
        self.port = port
        self.directory = directory
        self.appendOnly = appendOnly
    }

    deinit {
        process?.signal(SIGKILL)
        process?.wait(timeout: .seconds(5))
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts a server and waits until it answers PING.
    public static func start(appendOnly: Bool = false) async throws -> RedisTestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = RedisTestServer(port: try freePort(), directory: directory, appendOnly: appendOnly)
        try await server.launch()
        return server
    }

    /// Starts the server again on the same port and data directory (AOF is replayed).
    public func restart() async throws {
        try await launch()
    }

    /// SIGKILL: no chance to flush anything beyond what the AOF policy already wrote.
    public func kill() {
        let running = lock.withLock { () -> ChildProcess? in
            defer { process = nil }
            return process
        }
        running?.signal(SIGKILL)
        running?.wait(timeout: .seconds(5))
    }

    /// SIGTERM and wait (Redis flushes its AOF on the way down).
    public func stop() {
        let running = lock.withLock { () -> ChildProcess? in
            defer { process = nil }
            return process
        }
        running?.terminate()
    }

    private func launch() async throws {
        let process = try ChildProcess(executable: Self.serverPath, arguments: [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path,
            "--save", "", "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "everysec",
            "--daemonize", "no", "--loglevel", "warning", "--logfile", directory.appendingPathComponent("redis.log").path,
        ])
        lock.withLock { self.process = process }
        let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), connectTimeout: .milliseconds(200), reconnectWait: .zero))
        defer { client.shutdown() }
        for _ in 0..<200 {
            if let reply = try? await client.send("PING"), reply.string == "PONG" {
                // With AOF, wait until the data set is loaded before handing the server out.
                if let info = try? await client.send("INFO", "persistence"), let text = info.string, text.contains("loading:0") { return }
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSupportError("redis-server on port \(port) did not start (see \(directory.path)/redis.log)")
    }

    static var serverPath: String {
        if let path = ProcessInfo.processInfo.environment["RADGRID_REDIS_SERVER"] { return path }
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "redis-server"
    }
}

/// A free TCP port on 127.0.0.1 (bind to port 0 and read back what the kernel chose).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else { throw TestSupportError("bind() failed") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestSupportError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The Redis shared by tests that do not restart it; each test isolates itself with its
/// own key prefix.
public enum TestRedis {
    private static let shared = Mutex<Task<RedisTestServer, any Error>?>(nil)

    /// `RADGRID_TEST_REDIS_URL` (set by `make test`), else one server started per process.
    public static func url() async throws -> String {
        if let url = ProcessInfo.processInfo.environment["RADGRID_TEST_REDIS_URL"], !url.isEmpty { return url }
        let task = shared.withLock { current -> Task<RedisTestServer, any Error> in
            if let current { return current }
            let started = Task { try await RedisTestServer.start() }
            current = started
            // Statics are never deinitialised: stop the server when the test process exits.
            atexit { TestRedis.stopShared() }
            return started
        }
        return try await task.value.url
    }

    private static func stopShared() {
        let semaphore = DispatchSemaphore(value: 0)
        let task = shared.withLock { $0 }
        Task.detached {
            (try? await task?.value)?.kill()
            semaphore.signal()
        }
        _ = semaphore.wait(timeout: .now() + 5)
    }

    /// A key prefix unique to one test, e.g. `t3f9a1c:`.
    public static func uniquePrefix(_ label: String = "t") -> String {
        "\(label)\(UInt64.random(in: 0..<UInt64.max) & 0xffffffffff):"
    }
}
