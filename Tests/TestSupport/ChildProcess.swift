import Foundation

/// A child process for tests, spawned with an empty signal mask and default handlers.
///
/// Foundation's `Process` spawns from whatever thread runs the test, and the threads of
/// Swift's executors block every signal: children inherit that mask, so SIGTERM would
/// stay pending forever. Daemons under test must see SIGTERM to drain gracefully.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; stdout and stderr go to `outputPath` (appended)
    /// or /dev/null.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil, outputPath: String? = nil) throws {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        let output = outputPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentPairs = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environmentPairs.forEach { free($0) } }
        var childPID: pid_t = 0
        let result = posix_spawnp(&childPID, executable, &fileActions, &attributes, argv, environmentPairs)
        guard result == 0 else { throw TestSupportError("cannot start \(executable): \(String(cString: strerror(result)))") }
        pid = childPID
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
