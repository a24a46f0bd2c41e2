import CZstd

/// Streaming compression: feed chunks, then `finish`. One frame with a checksum.
public final class ZstdCompressionStream {
    private let context: OpaquePointer
    private var scratch: [UInt8]

    public init(level: Int = 3, checksum: Bool = true) throws {
        guard Zstd.levelRange.contains(level) else { throw ZstdError.invalidArgument("compression level \(level) is outside \(Zstd.levelRange)") }
        guard let context = ZSTD_createCCtx() else { throw ZstdError.internal("cannot create a compression context") }
        self.context = context
        scratch = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try Zstd.check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)))
        try Zstd.check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0))
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `chunk`, appending whatever output is ready to `output`.
    public func compress(_ chunk: [UInt8], into output: inout [UInt8]) throws {
        try run(chunk, directive: ZSTD_e_continue, into: &output)
    }

    /// Ends the frame (flushing everything and writing the checksum) into `output`.
    public func finish(into output: inout [UInt8]) throws {
        try run([], directive: ZSTD_e_end, into: &output)
    }

    private func run(_ chunk: [UInt8], directive: ZSTD_EndDirective, into output: inout [UInt8]) throws {
        let context = self.context
        try chunk.withUnsafeBytes { source throws in
            var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while true {
                let (remaining, produced) = try scratch.withUnsafeMutableBytes { destination throws -> (Int, Int) in
                    var out = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                    let remaining = try Zstd.check(ZSTD_compressStream2(context, &out, &input, directive))
                    return (remaining, out.pos)
                }
                output.append(contentsOf: scratch[0..<produced])
                let done = directive == ZSTD_e_end ? remaining == 0 : input.pos == input.size
                if done { return }
            }
        }
    }
}

/// Streaming decompression with a hard cap on total output and on the window size.
public final class ZstdDecompressionStream {
    private let context: OpaquePointer
    private let maxOutputSize: Int
    private var produced = 0
    /// Non-zero while the current frame is incomplete (zstd's hint of bytes still wanted).
    private var pendingHint = 0
    private var sawInput = false
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_DStreamOutSize(), alignment: 16)

    public init(maxOutputSize: Int = Zstd.defaultMaxOutputSize) throws {
        guard maxOutputSize > 0 else { throw ZstdError.invalidArgument("maxOutputSize must be positive") }
        guard let context = ZSTD_createDCtx() else { throw ZstdError.internal("cannot create a decompression context") }
        self.context = context
        self.maxOutputSize = maxOutputSize
        try Zstd.check(ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, Zstd.maxWindowLog))
    }

    deinit {
        ZSTD_freeDCtx(context)
        scratch.deallocate()
    }

    /// Total bytes produced so far.
    public var outputCount: Int { produced }

    /// Decompresses `chunk`, appending to `output`; throws `zstd.tooLarge` once the total
    /// would pass the limit (before the excess is appended).
    public func decompress(_ chunk: [UInt8], into output: inout [UInt8]) throws {
        if !chunk.isEmpty { sawInput = true }
        let context = self.context
        let limit = maxOutputSize
        let scratch = self.scratch
        try chunk.withUnsafeBytes { source throws in
            var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while true {
                // Decode one block into the scratch buffer, then copy what is allowed.
                var out = ZSTD_outBuffer(dst: scratch.baseAddress, size: scratch.count, pos: 0)
                let hint = try Zstd.check(ZSTD_decompressStream(context, &out, &input))
                let written = out.pos
                if produced + written > limit {
                    output.append(contentsOf: UnsafeRawBufferPointer(start: scratch.baseAddress, count: limit - produced))
                    produced = limit
                    throw ZstdError.tooLarge("decompressed data exceeds the limit of \(limit) bytes")
                }
                output.append(contentsOf: UnsafeRawBufferPointer(start: scratch.baseAddress, count: written))
                produced += written
                pendingHint = hint
                // Done with this chunk when all input is consumed and the decoder has no
                // buffered output left (it filled less than the room it was given).
                if input.pos == input.size && written < scratch.count { return }
            }
        }
    }

    /// Confirms the input ended on a frame boundary.
    public func finish() throws {
        guard sawInput else { throw ZstdError.truncated("no input") }
        if pendingHint != 0 { throw ZstdError.truncated("input ends inside a zstd frame") }
    }
}
