#if canImport(Glibc)
import Glibc
#endif
import RadGridCore

/// A daemon started by `radgrid up` (or the benchmark), spawned by `CleanSpawn` so SIGTERM
/// reaches it. Output goes to `logPath`.
public final class ChildDaemon: @unchecked Sendable {
    public let name: String
    public let pid: pid_t
    public let logPath: String
    private var status: Int32?

    public init(name: String, executable: String, arguments: [String], logPath: String, environment: [String: String]? = nil) throws {
        self.name = name
        self.logPath = logPath
        var combined = ProcessEnvironment.current
        for (key, value) in environment ?? [:] { combined[key] = value }
        pid = try CleanSpawn.spawn(executable: executable, arguments: arguments, environment: combined, outputPath: logPath)
    }

    /// Exit status once the process has ended (reaps it), nil while it runs.
    public func poll() -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        if r == pid {
            let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            status = code
            return code
        }
        if r < 0 { status = -1; return -1 }
        return nil
    }

    public var isRunning: Bool { poll() == nil }

    @discardableResult
    public func signal(_ signal: Int32) -> Bool { isRunning && kill(pid, signal) == 0 }

    /// Waits for the process to end (polling); false on timeout.
    public func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !isRunning
    }

    /// SIGTERM, then SIGKILL after `grace`.
    public func stop(grace: Duration = .seconds(20)) async {
        guard signal(SIGTERM) else { return }
        if await wait(timeout: grace) { return }
        _ = signal(SIGKILL)
        _ = await wait(timeout: .seconds(5))
    }

    /// Directory of the running executable (daemons are spawned from the same build).
    public static var executableDirectory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    /// A free TCP port on 127.0.0.1.
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
}
