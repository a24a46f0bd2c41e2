import RedisClient
import Synchronization

/// Coalesces the completions of many concurrent handlers into one script call: while one
/// call is in flight the next completions queue up and go together in the following one.
/// An idle batcher sends at once, so batching adds no latency at low load. Each task is
/// still accepted or refused on its own (its fence is checked by the script).
final class CompletionBatcher: Sendable {
    typealias Settle = @Sendable (Result<CompletionOutcome, any Error>) -> Void

    private struct State {
        var pending: [(TaskQueue.Completion, Settle)] = []
        var flushing = false
    }

    private let maxBatch: Int
    private let state = Mutex(State())

    init(maxBatch: Int = 64) {
        self.maxBatch = maxBatch
    }

    func complete(_ completion: TaskQueue.Completion, on queue: TaskQueue) async throws -> CompletionOutcome {
        let result: Result<CompletionOutcome, any Error> = await withCheckedContinuation { continuation in
            submit(completion, on: queue) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Queues `completion`; `settle` is called with its outcome from the flushing task (it
    /// should return quickly), or at once when the effects are invalid.
    func submit(_ completion: TaskQueue.Completion, on queue: TaskQueue, settle: @escaping Settle) {
        do {
            try queue.validate(completion.effects)
        } catch {
            return settle(.failure(error))
        }
        let startFlushing = state.withLock { state -> Bool in
            state.pending.append((completion, settle))
            if state.flushing { return false }
            state.flushing = true
            return true
        }
        if startFlushing { Task { await flush(queue) } }
    }

    private func flush(_ queue: TaskQueue) async {
        while true {
            let batch = state.withLock { state -> [(TaskQueue.Completion, Settle)] in
                if state.pending.isEmpty {
                    state.flushing = false
                    return []
                }
                let count = min(state.pending.count, maxBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return batch
            }
            if batch.isEmpty { return }
            do {
                let outcomes = try await queue.complete(batch.map(\.0))
                for (index, item) in batch.enumerated() { item.1(.success(outcomes[index])) }
            } catch {
                for item in batch { item.1(.failure(error)) }
            }
        }
    }
}
