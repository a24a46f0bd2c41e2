#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// glibc iconv descriptors for one source character set, converting to UTF-8.
///
/// An `iconv_t` carries conversion state and must not be used by two threads at once, so
/// descriptors are lent out one at a time: `withDescriptor` takes an idle one (or opens a new
/// one), and puts it back reset afterwards. At most `maxIdle` stay open per character set.
final class IconvPool: Sendable {
    let fromCode: String
    private let idle = Mutex<[Descriptor]>([])
    private static let maxIdle = 8

    struct Descriptor: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
    }

    init(_ fromCode: String) {
        self.fromCode = fromCode
    }

    deinit {
        idle.withLock { list in
            for d in list { iconv_close(d.handle) }
            list.removeAll()
        }
    }

    /// False when glibc has no converter for the character set (a missing gconv module).
    var isAvailable: Bool {
        withDescriptor { _ in (true, clean: true) } ?? false
    }

    /// Runs `body` with a descriptor nobody else uses; nil when iconv_open fails. `body`
    /// returns its result and whether it left the descriptor in an initial state (a
    /// conversion that consumed all its input: the converters used here keep no state
    /// between characters); otherwise the descriptor is reset before it is put back.
    func withDescriptor<R>(_ body: (UnsafeMutableRawPointer) -> (R, clean: Bool)) -> R? {
        var lent = idle.withLock { $0.popLast() }
        if lent == nil {
            // iconv_open returns (iconv_t)-1 on failure.
            guard let h = iconv_open("UTF-8", fromCode), Int(bitPattern: h) != -1 else { return nil }
            lent = Descriptor(handle: h)
        }
        let d = lent!
        let (result, clean) = body(d.handle)
        if !clean { _ = iconv(d.handle, nil, nil, nil, nil) }
        let keep = idle.withLock { list -> Bool in
            guard list.count < IconvPool.maxIdle else { return false }
            list.append(d)
            return true
        }
        if !keep { iconv_close(d.handle) }
        return result
    }

    /// Converts `input` to UTF-8 at `output`. Returns the number of bytes written, or nil when
    /// the input holds an invalid or unmapped sequence, ends inside one, the output is too
    /// small, or the converter is unavailable.
    func convert(_ input: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        guard input.count > 0 else { return 0 }
        guard let inBase = input.baseAddress, let outBase = output.baseAddress else { return nil }
        let written: Int?? = withDescriptor { cd -> (Int?, clean: Bool) in
            var inPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(mutating: inBase).assumingMemoryBound(to: CChar.self)
            var inLeft = input.count
            var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBase).assumingMemoryBound(to: CChar.self)
            var outLeft = output.count
            let r = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
            // UTF-8 output has no shift state to flush.
            if r == -1 || inLeft != 0 { return (nil, false) }
            return (output.count - outLeft, true)
        }
        return written ?? nil
    }
}

/// The iconv converters the text decoders use (opened on first use).
enum Iconv {
    static let eucJP = IconvPool("EUC-JP")     // JIS X 0208 / 0212 (from ISO 2022 and Shift JIS)
    static let eucKR = IconvPool("EUC-KR")     // KS X 1001
    static let eucCN = IconvPool("EUC-CN")     // GB 2312
    static let gbk = IconvPool("GBK")
    static let gb18030 = IconvPool("GB18030")

    static let all: [IconvPool] = [eucJP, eucKR, eucCN, gbk, gb18030]
}

/// A single-byte character set as a 256-entry table built once with iconv, so decoding is a
/// table lookup without a descriptor.
final class SingleByteTable: Sendable {
    /// Unicode scalar per byte; `undefined` where the character set has no character.
    let scalars: [UInt32]
    /// False when glibc could not open the character set (every byte then reads as undefined).
    let isAvailable: Bool
    static let undefined: UInt32 = 0xFFFF_FFFF

    init(iconvName: String, patch: (UInt8) -> UInt32? = { _ in nil }) {
        let pool = IconvPool(iconvName)
        var table = [UInt32](repeating: SingleByteTable.undefined, count: 256)
        var available = false
        var out = [UInt8](repeating: 0, count: 8)
        for b in 0..<256 {
            let byte = [UInt8(b)]
            let n = byte.withUnsafeBufferPointer { ib in out.withUnsafeMutableBufferPointer { pool.convert(ib, into: $0) } }
            if let n, n > 0 {
                available = true
                var scalar: UInt32 = SingleByteTable.undefined
                for s in String(decoding: out[0..<n], as: UTF8.self).unicodeScalars { scalar = s.value; break }
                table[b] = scalar
            }
            if let p = patch(UInt8(b)) { table[b] = p }
        }
        scalars = table
        isAvailable = available
    }
}
