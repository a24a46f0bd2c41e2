import Foundation
import Logging
import Synchronization

/// A hiredis connection with a thread of its own.
///
/// hiredis's blocking calls run here and never on Swift's cooperative pool; async callers
/// suspend on a continuation until the thread has the reply.
final class ConnectionWorker: @unchecked Sendable {
    // `connection` is touched only on `thread`; `jobs`/`stopping` only under `condition`.
    private let connection: HiredisConnection
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var jobIndex = 0
    private var stopping = false

    init(name: String, configuration: RedisConfiguration, logger: Logger, epoch: ConnectionEpoch) {
        connection = HiredisConnection(configuration: configuration, logger: logger, epoch: epoch)
        let thread = Thread { [self] in runLoop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Runs `commands` on this worker's thread; `decode` turns each reply into `Output` there
    /// (nil: a script the server does not know, see `HiredisConnection.execute`).
    func execute<Output: Sendable>(_ commands: [RedisCommand], timeout: Duration, operation: UInt64 = 0,
                                   decode: @escaping @Sendable (RedisReply) -> Output) async throws(RedisError) -> [Output?] {
        let result: Result<[Output?], RedisError> = await withCheckedContinuation { continuation in
            submit { connection in
                guard let connection else {
                    continuation.resume(returning: .failure(RedisError(.closed, "the Redis client was shut down")))
                    return
                }
                do throws(RedisError) {
                    continuation.resume(returning: .success(try connection.execute(commands, timeout: timeout, operation: operation, decode: decode)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// Interrupts `operation`: a read in progress fails at once, a queued one never starts
    /// (safe from any thread).
    func interrupt(operation: UInt64) { connection.interrupt(operation: operation) }

    /// Interrupts whatever operation is in progress (safe from any thread).
    func interruptCurrent() { connection.interrupt(operation: operations.load(ordering: .acquiring)) }

    private let operations = Atomic<UInt64>(0)
    /// A fresh id for one cancellable operation.
    func nextOperation() -> UInt64 { operations.add(1, ordering: .relaxed).newValue }

    /// Stops the thread after the jobs already queued; the connection is closed on it.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// `job` receives nil when the worker has been stopped.
    private func submit(_ job: @escaping (HiredisConnection?) -> Void) {
        condition.lock()
        if stopping {
            condition.unlock()
            job(nil)
            return
        }
        jobs.append { [connection] in job(connection) }
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        while true {
            condition.lock()
            while jobIndex == jobs.count && !stopping { condition.wait() }
            if jobIndex == jobs.count && stopping {
                condition.unlock()
                connection.disconnect()
                return
            }
            let job = jobs[jobIndex]
            jobIndex += 1
            if jobIndex == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                jobIndex = 0
            }
            condition.unlock()
            job()
        }
    }
}
