import Foundation
import RadGridCore

/// A child process for tests, spawned by `CleanSpawn` (empty signal mask, default handlers).
///
/// Foundation's `Process` spawns from whatever thread runs the test, and the threads of
/// Swift's executors block every signal: children would inherit that mask and SIGTERM would
/// stay pending forever. Daemons under test must see SIGTERM to drain gracefully.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; stdout and stderr go to `outputPath` (appended)
    /// or /dev/null.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil, outputPath: String? = nil) throws {
        pid = try CleanSpawn.spawn(executable: executable, arguments: arguments,
                                   environment: environment ?? ProcessInfo.processInfo.environment, outputPath: outputPath)
    }

    deinit {
        if isRunning { _ = signal(SIGKILL); _ = wait(timeout: .seconds(5)) }
    }

    /// Sends `signal` unless the child has already been reaped: after `waitpid` the kernel
    /// may hand its pid to another process (another test's daemon), which must never be hit.
    /// Reaping happens only under the same lock, so the check and the kill cannot race it.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard exitStatus == nil else { return false }
        return kill(pid, signal) == 0
    }

    /// Reaps the child if it has exited; true while it runs.
    public var isRunning: Bool {
        lock.lock(); defer { lock.unlock() }
        if exitStatus != nil { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { exitStatus = status; return false }
        return result == 0
    }

    /// Waits for exit; returns the exit code (128+signal when killed), nil on timeout.
    @discardableResult
    public func wait(timeout: Duration) -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if !isRunning { return exitCode }
            usleep(5_000)
        }
        return nil
    }

    public var exitCode: Int32? {
        lock.lock(); defer { lock.unlock() }
        guard let status = exitStatus else { return nil }
        let signalNumber = status & 0x7f
        return signalNumber == 0 ? (status >> 8) & 0xff : 128 + signalNumber
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    public func terminate(grace: Duration = .seconds(10)) {
        guard isRunning else { return }
        signal(SIGTERM)
        if wait(timeout: grace) == nil {
            signal(SIGKILL)
            wait(timeout: .seconds(5))
        }
    }
}
