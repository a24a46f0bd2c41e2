import CZstd
import Synchronization

/// One-shot zstd compression and bounded decompression.
///
/// Decompression never trusts the frame: the declared content size is checked against the
/// caller's limit before any allocation, output grows only as real data arrives, and it
/// stops with `zstd.tooLarge` the moment the limit is passed (a 1 KB bomb that claims or
/// expands to 10 GB costs at most `maxOutputSize` bytes). The window is capped too, so a
/// hostile frame cannot make the decoder itself allocate gigabytes.
public enum Zstd {
    /// Default cap on decompressed bytes: 1 GiB, well above any single DICOM instance we take.
    public static let defaultMaxOutputSize = 1 << 30
    /// Largest window accepted when decompressing (2^27 = 128 MiB, zstd's own default limit).
    public static let maxWindowLog: Int32 = 27

    public static var levelRange: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// Compresses `input` as one frame with its content size and (by default) a checksum.
    public static func compress(_ input: [UInt8], level: Int = 3, checksum: Bool = true) throws -> [UInt8] {
        guard levelRange.contains(level) else { throw ZstdError.invalidArgument("compression level \(level) is outside \(levelRange)") }
        let context = try CompressionContexts.shared.take()
        defer { CompressionContexts.shared.give(back: context) }
        // Parameters are sticky on a reused context: reset them, keep its workspace.
        ZSTD_CCtx_reset(context.pointer, ZSTD_reset_session_and_parameters)
        try check(ZSTD_CCtx_setParameter(context.pointer, ZSTD_c_compressionLevel, Int32(level)))
        try check(ZSTD_CCtx_setParameter(context.pointer, ZSTD_c_checksumFlag, checksum ? 1 : 0))
        let bound = ZSTD_compressBound(input.count)
        // Not zero-filled first: zstd writes every byte it reports.
        var failure: (any Error)?
        let output = [UInt8](unsafeUninitializedCapacity: bound) { destination, count in
            count = 0
            input.withUnsafeBytes { source in
                do {
                    count = try check(ZSTD_compress2(context.pointer, destination.baseAddress, destination.count, source.baseAddress, source.count))
                } catch {
                    failure = error
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Decompresses every frame in `input`, refusing more than `maxOutputSize` bytes.
    public static func decompress(_ input: [UInt8], maxOutputSize: Int = defaultMaxOutputSize) throws -> [UInt8] {
        var output: [UInt8] = []
        try decompress(input, maxOutputSize: maxOutputSize, into: &output)
        return output
    }

    /// Decompresses into `output` (replacing its contents, reusing its capacity): the worker
    /// hot path keeps one buffer per slot and never reallocates for same-sized instances.
    public static func decompress(_ input: [UInt8], maxOutputSize: Int = defaultMaxOutputSize, into output: inout [UInt8]) throws {
        output.removeAll(keepingCapacity: true)
        guard !input.isEmpty else { throw ZstdError.truncated("empty input is not a zstd frame") }
        let declared = try declaredSize(input)
        if let declared, declared > UInt64(maxOutputSize) {
            throw ZstdError.tooLarge("frame declares \(declared) bytes, above the limit of \(maxOutputSize)")
        }
        if let declared, try decompressDeclared(input, size: Int(declared), into: &output) { return }
        // Unknown size, or more than one frame: stream with the running cap.
        output.removeAll(keepingCapacity: true)
        let decoder = try ZstdDecompressionStream(maxOutputSize: maxOutputSize)
        try decoder.decompress(input, into: &output)
        try decoder.finish()
    }

    /// Fast path for the common single frame with a declared size: one exact allocation and
    /// one call. Returns false when the input holds more than that frame (the caller streams).
    private static func decompressDeclared(_ input: [UInt8], size: Int, into output: inout [UInt8]) throws -> Bool {
        guard let context = ZSTD_createDCtx() else { throw ZstdError.internal("cannot create a decompression context") }
        defer { ZSTD_freeDCtx(context) }
        try check(ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, maxWindowLog))
        if output.capacity < size {
            output = [UInt8](unsafeUninitializedCapacity: size) { _, count in count = size }
        } else {
            output.append(contentsOf: repeatElement(0, count: size))
        }
        let result = output.withUnsafeMutableBytes { destination in
            input.withUnsafeBytes { source in
                ZSTD_decompressDCtx(context, destination.baseAddress, size, source.baseAddress, source.count)
            }
        }
        if ZSTD_isError(result) != 0 {
            let code = ZSTD_getErrorCode(result)
            if code == ZSTD_error_dstSize_tooSmall { return false }
            if code == ZSTD_error_srcSize_wrong { throw ZstdError.truncated("input ends inside a zstd frame") }
            try check(result)
        }
        guard result == size else { throw ZstdError.corrupt("frame declares \(size) bytes but holds \(result)") }
        return true
    }

    /// The decompressed size a frame header declares: nil when the frame does not say.
    public static func declaredSize(_ input: [UInt8]) throws -> UInt64? {
        let size = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if size == ZSTD_CONTENTSIZE_ERROR_VALUE {
            throw input.count < 18 && startsWithMagic(input)
                ? ZstdError.truncated("input ends inside the frame header")
                : ZstdError.corrupt("not a zstd frame (bad magic number or header)")
        }
        if size == ZSTD_CONTENTSIZE_UNKNOWN_VALUE { return nil }
        return size
    }

    static let ZSTD_CONTENTSIZE_UNKNOWN_VALUE: UInt64 = 0 &- 1
    static let ZSTD_CONTENTSIZE_ERROR_VALUE: UInt64 = 0 &- 2

    private static func startsWithMagic(_ input: [UInt8]) -> Bool {
        input.count >= 4 && input[0] == 0x28 && input[1] == 0xB5 && input[2] == 0x2F && input[3] == 0xFD
    }

    @discardableResult
    static func check(_ result: Int) throws -> Int {
        guard ZSTD_isError(result) != 0 else { return result }
        let name = String(cString: ZSTD_getErrorName(result))
        switch ZSTD_getErrorCode(result) {
        case ZSTD_error_checksum_wrong: throw ZstdError.corrupt("checksum mismatch: \(name)")
        case ZSTD_error_corruption_detected, ZSTD_error_prefix_unknown, ZSTD_error_frameParameter_unsupported,
             ZSTD_error_literals_headerWrong, ZSTD_error_dictionary_corrupted, ZSTD_error_dictionary_wrong:
            throw ZstdError.corrupt(name)
        case ZSTD_error_frameParameter_windowTooLarge:
            throw ZstdError.tooLarge("frame window is larger than 2^\(maxWindowLog) bytes")
        case ZSTD_error_parameter_outOfBound, ZSTD_error_parameter_unsupported:
            throw ZstdError.invalidArgument(name)
        default:
            throw ZstdError.internal(name)
        }
    }
}
