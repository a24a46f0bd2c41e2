#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A child process started by `CleanSpawn` (empty signal mask, default handlers, so SIGTERM
/// reaches it): the one helper behind `radgrid up`, the benchmarks and the tests.
///
/// It never signals a child it has already reaped: after `waitpid` the kernel may give the
/// pid to another process, which must never be hit. Reaping and signalling happen under one
/// lock, so the check and the kill cannot race.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// A name for logs (`router`, `worker-2`).
    public let name: String
    /// Where stdout and stderr go (appended), if anywhere.
    public let outputPath: String?
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `executable` (searched in PATH) with `arguments`; `environment` defaults to this
    /// process's own.
    public init(name: String? = nil, executable: String, arguments: [String], environment: [String: String]? = nil, outputPath: String? = nil) throws {
        self.name = name ?? executable
        self.outputPath = outputPath
        pid = try CleanSpawn.spawn(executable: executable, arguments: arguments, environment: environment ?? ProcessEnvironment.current, outputPath: outputPath)
    }

    deinit {
        if isRunning {
            _ = signal(SIGKILL)
            _ = wait(timeout: .seconds(5))
        }
    }

    /// Sends `signal` unless the child has been reaped; true when it was sent.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        exitStatus.withLock { status in
            guard status == nil else { return false }
            return kill(pid, signal) == 0
        }
    }

    /// Reaps the child if it has exited; true while it runs.
    public var isRunning: Bool {
        exitStatus.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid { status = raw; return false }
            if result < 0 { status = -1; return false }
            return true
        }
    }

    /// Exit code once reaped: the code, or 128 + signal when killed.
    public var exitCode: Int32? {
        exitStatus.withLock { status in
            guard let status else { return nil }
            if status == -1 { return -1 }
            let signalNumber = status & 0x7f
            return signalNumber == 0 ? (status >> 8) & 0xff : 128 + signalNumber
        }
    }

    /// Blocks the calling thread until the child exits (for tests and synchronous tools);
    /// the exit code, or nil on timeout. Async code uses `exit(timeout:)`.
    @discardableResult
    public func wait(timeout: Duration) -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if !isRunning { return exitCode }
            usleep(5_000)
        }
        return isRunning ? nil : exitCode
    }

    /// Waits without blocking a thread; the exit code, or nil on timeout.
    @discardableResult
    public func exit(timeout: Duration) async -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if !isRunning { return exitCode }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return isRunning ? nil : exitCode
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` (blocking).
    public func terminate(grace: Duration = .seconds(10)) {
        guard isRunning else { return }
        signal(SIGTERM)
        if wait(timeout: grace) == nil {
            signal(SIGKILL)
            wait(timeout: .seconds(5))
        }
    }

    /// SIGTERM, then SIGKILL after `grace`, without blocking a thread.
    public func stop(grace: Duration = .seconds(20)) async {
        guard signal(SIGTERM) else { return }
        if await exit(timeout: grace) != nil { return }
        signal(SIGKILL)
        await exit(timeout: .seconds(5))
    }

    /// A free TCP port on 127.0.0.1 (bind to port 0 and read back what the kernel chose).
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Directory of the running executable (daemons are spawned from the same build).
    public static var executableDirectory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }
}
