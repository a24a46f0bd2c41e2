/// ISO 2022 JP decoding as Python's iso2022_jp / iso2022_jp_2 codecs do it (pydicom hands
/// them every fragment that starts with ESC $ B or ESC $ ( D, escape included, and uses them
/// as the first decoder when (0008,0005) starts with ISO 2022 IR 87 or 159). Double-byte
/// sets go through iconv: JIS X 0208/0212 as EUC-JP, GB 2312 as EUC-CN, KS X 1001 as EUC-KR.
enum ISO2022JP {
    enum Charset: Equatable {
        case ascii, jisRoman, jis0208, jis0212, gb2312, ksx1001
        /// ISO 8859-1 / -7 designated to G0: Python accepts the designation but cannot decode
        /// with it (each character is an error).
        case undecodable
    }

    enum Escape {
        case designate(Charset, g: Int, length: Int)
        case error(length: Int)
        case incomplete
    }

    static let esc: UInt8 = 0x1B

    @inline(__always) static func isEscapeEnd(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || c == 0x40 }

    static func decode(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink, replacing: Bool, jp2: Bool) -> Bool {
        let start = sink.count
        // Strict decoding converts each run of double-byte characters with one iconv call:
        // their EUC bytes (at most 3 per 2 input bytes) wait in `scratch`.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: b.count * 3 / 2 + 4) { scratch -> Bool in
            var g0 = Charset.ascii
            var escapeThroughout = false  // after an unknown ESC, bytes pass as Latin-1 up to a final byte
            var i = 0
            let n = b.count
            var pending = 0
            var pendingPool = Iconv.eucJP
            let flushFailed = Int.min

            func flush(_ sink: inout UTF8Sink) -> Bool {
                guard pending > 0 else { return true }
                let run = UnsafeBufferPointer(rebasing: scratch[0..<pending])
                pending = 0
                guard let written = pendingPool.convert(run, into: sink.free) else { return false }
                sink.count += written
                return true
            }

            /// Decodes at `i`: the bytes consumed (> 0), minus the length of an error (the
            /// rest of the input when it ends inside a sequence), or `flushFailed`.
            func step(_ sink: inout UTF8Sink) -> Int {
                let c = b[i]
                if c < 0x20 && c != esc && !escapeThroughout {
                    // C0 controls (SO and SI too: these codecs do not shift); EUC passes them.
                    if pending > 0 { scratch[pending] = c; pending += 1 } else { sink.byte(c) }
                    return 1
                }
                let isPair = c >= 0x21 && c < 0x7F && c != esc && !escapeThroughout
                    && (g0 == .jis0208 || g0 == .jis0212 || g0 == .gb2312 || g0 == .ksx1001)
                if !isPair && !flush(&sink) { return flushFailed }
                if escapeThroughout {
                    sink.scalar(UInt32(c))
                    if isEscapeEnd(c) { escapeThroughout = false }
                    return 1
                }
                if c == esc {
                    guard i + 1 < n else { return -(n - i) }
                    let c2 = b[i + 1]
                    if c2 == 0x28 || c2 == 0x29 || c2 == 0x24 || c2 == 0x2E || c2 == 0x26 {  // ( ) $ . &
                        switch escape(b, at: i, jp2: jp2) {
                        case .designate(let charset, let g, let length):
                            if g == 0 { g0 = charset }
                            return length
                        case .error(let length): return -length
                        case .incomplete: return -(n - i)
                        }
                    }
                    if jp2 && c2 == 0x4E {  // ESC N: one character from G2 (always ASCII here)
                        guard i + 2 < n else { return -(n - i) }
                        guard b[i + 2] & 0x80 == 0 else { return -3 }
                        sink.byte(b[i + 2])
                        return 3
                    }
                    sink.byte(c)
                    escapeThroughout = true
                    return 1
                }
                if c >= 0x80 { return -1 }
                switch g0 {
                case .ascii:
                    sink.byte(c)
                    return 1
                case .jisRoman:
                    sink.scalar(c == 0x5C ? 0xA5 : c == 0x7E ? 0x203E : UInt32(c))
                    return 1
                case .undecodable:
                    return -1
                default:
                    guard i + 1 < n else { return -(n - i) }
                    switch pair(c, b[i + 1], in: g0) {
                    case .unmapped:
                        return -2
                    case .scalar(let v):
                        guard flush(&sink) else { return flushFailed }
                        sink.scalar(v)
                        return 2
                    case .euc(let bytes, let count, let pool):
                        if pool !== pendingPool {
                            guard flush(&sink) else { return flushFailed }
                            pendingPool = pool
                        }
                        for k in 0..<count { scratch[pending + k] = UInt8(truncatingIfNeeded: bytes >> UInt32(8 * (count - 1 - k))) }
                        pending += count
                        // Replacing: convert at once, so an unmapped pair is replaced alone.
                        if replacing && !flush(&sink) { return -2 }
                        return 2
                    }
                }
            }

            while i < n {
                let r = step(&sink)
                if r > 0 {
                    i += r
                    continue
                }
                if !replacing || r == flushFailed { sink.count = start; return false }
                sink.replacement()
                i += -r
            }
            if !flush(&sink) { sink.count = start; return false }
            return true
        }
    }

    enum Pair {
        case euc(UInt32, count: Int, pool: IconvPool)
        case scalar(UInt32)
        case unmapped
    }

    /// One double-byte character: its EUC form for iconv, a character Python maps
    /// differently from glibc, or no mapping.
    static func pair(_ c1: UInt8, _ c2: UInt8, in charset: Charset) -> Pair {
        guard c1 >= 0x21, c1 <= 0x7E, c2 >= 0x21, c2 <= 0x7E else { return .unmapped }
        let euc = UInt32(c1 | 0x80) << 8 | UInt32(c2 | 0x80)
        switch charset {
        case .jis0208: return .euc(euc, count: 2, pool: Iconv.eucJP)
        case .jis0212:
            if c1 == 0x22 && c2 == 0x37 { return .scalar(0x7E) }  // Python: TILDE, glibc: FULLWIDTH TILDE
            return .euc(0x8F_0000 | euc, count: 3, pool: Iconv.eucJP)
        case .gb2312: return .euc(euc, count: 2, pool: Iconv.eucCN)
        case .ksx1001:
            if c1 == 0x22 && c2 == 0x68 { return .unmapped }  // not in Python's KS X 1001 table
            return .euc(euc, count: 2, pool: Iconv.eucKR)
        default: return .unmapped
        }
    }

    /// An escape sequence at `p`, read the way CPython's iso2022 decoder reads it.
    static func escape(_ b: UnsafeBufferPointer<UInt8>, at p: Int, jp2: Bool) -> Escape {
        let n = b.count - p
        var length = 0
        var k = 1
        while k < 16 {
            if k >= n { return .incomplete }
            if isEscapeEnd(b[p + k]) {
                length = k + 1
                break
            }
            if k + 1 < n && b[p + k] == 0x26 && b[p + k + 1] == 0x40 { k += 2 }  // "&@" prefix (JIS X 0208-1990)
            k += 1
        }
        let dollar: UInt8 = 0x24, open: UInt8 = 0x28, close: UInt8 = 0x29, dot: UInt8 = 0x2E
        var final: UInt8
        var doubleByte: Bool
        var g: Int
        switch length {
        case 0:
            return .error(length: 1)
        case 3:
            final = b[p + 2]
            if b[p + 1] == dollar {
                doubleByte = true; g = 0
            } else {
                doubleByte = false
                switch b[p + 1] {
                case open: g = 0
                case close: g = 1
                case dot where jp2: g = 2
                default: return .error(length: 3)
                }
            }
        case 4:
            guard b[p + 1] == dollar else { return .error(length: 4) }
            final = b[p + 3]; doubleByte = true
            switch b[p + 2] {
            case open: g = 0
            case close: g = 1
            default: return .error(length: 4)
            }
        case 6:
            guard b[p + 3] == esc, b[p + 4] == dollar, b[p + 5] == 0x42 else { return .error(length: 6) }
            final = 0x42; doubleByte = true; g = 0
        default:
            return .error(length: length)
        }
        let charset: Charset
        switch (doubleByte, final) {
        case (false, 0x42): charset = .ascii
        case (false, 0x4A): charset = .jisRoman
        case (true, 0x42), (true, 0x40): charset = .jis0208
        case (true, 0x44) where jp2: charset = .jis0212
        case (true, 0x41) where jp2: charset = .gb2312
        case (true, 0x43) where jp2: charset = .ksx1001
        case (false, 0x41) where jp2, (false, 0x46) where jp2: charset = .undecodable
        default: return .error(length: length)
        }
        return .designate(charset, g: g, length: length)
    }
}
