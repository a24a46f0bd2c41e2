import CZstd
import Synchronization

/// A few zstd compression contexts kept for reuse: creating one per instance allocated and
/// cleared its workspace (about a megabyte) every time, a visible share of intake's CPU.
final class CompressionContexts: Sendable {
    /// One context, used by one caller at a time (taken from the pool, given back after).
    struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    static let shared = CompressionContexts(keep: 8)

    private let idle = Mutex<[Context]>([])
    private let keep: Int

    init(keep: Int) { self.keep = keep }

    func take() throws -> Context {
        if let context = idle.withLock({ $0.popLast() }) { return context }
        guard let pointer = ZSTD_createCCtx() else { throw ZstdError.internal("cannot create a compression context") }
        return Context(pointer: pointer)
    }

    func give(back context: Context) {
        let kept = idle.withLock { contexts -> Bool in
            guard contexts.count < keep else { return false }
            contexts.append(context)
            return true
        }
        if !kept { ZSTD_freeCCtx(context.pointer) }
    }
}
