import Synchronization

/// What a handler receives: the task, and a way to attach effects and a result to its
/// completion (applied by the completion script iff the completion is accepted).
public final class TaskContext: Sendable {
    public let task: ClaimedTask
    /// The queue (the shard, for a sharded queue) the task was claimed from: effects must
    /// carry its hash tag (`queue.keys.hashTag`).
    public let queue: TaskQueue
    private let state = Mutex(State())

    private struct State {
        var effects: [Effect] = []
        var result: [UInt8]?
        var leaseLost = false
    }

    init(task: ClaimedTask, queue: TaskQueue) {
        self.task = task
        self.queue = queue
    }

    public var key: String { task.key }
    public var payload: [UInt8] { task.payload }
    public var lane: Lane { task.lane }
    /// 1-based delivery number (counts deliveries whose worker died, too).
    public var attempt: Int { task.delivery }
    public var fence: String { task.fence }
    public var group: String? { task.group }

    /// Adds a write to the completion script (key must carry the queue's hash tag).
    public func addEffect(_ effect: Effect) { state.withLock { $0.effects.append(effect) } }

    /// Sets the result stored under `QueueKeys.result(key)` on completion.
    public func setResult(_ bytes: [UInt8]) { state.withLock { $0.result = bytes } }

    /// True once the consumer learned that another worker took this task over: the handler
    /// was cancelled and its completion will be refused.
    public var isLeaseLost: Bool { state.withLock { $0.leaseLost } }

    func markLeaseLost() { state.withLock { $0.leaseLost = true } }
    var effects: [Effect] { state.withLock { $0.effects } }
    var result: [UInt8]? { state.withLock { $0.result } }
}

/// Wakes a single waiting loop; `wait(timeout:)` returns on a signal, the timeout or
/// cancellation. A signal sent while nobody waits is kept (one), so callers re-check their
/// condition after every return.
final class Wakeup: Sendable {
    private struct State {
        var signaled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    init() {}

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signaled = true
            return nil
        }
        waiter?.resume()
    }

    /// Only one task may wait at a time.
    func wait(timeout: Duration) async {
        let pending = state.withLock { state -> Bool in
            defer { state.signaled = false }
            return state.signaled
        }
        if pending || Task.isCancelled { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.signal() }
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signaled || Task.isCancelled {
                        state.signaled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.signal()
        }
    }
}
