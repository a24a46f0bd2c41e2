/// The decoders behind `SpecificCharacterSet`: one per character set pydicom 3.0.2 maps a
/// (0008,0005) term to, each with Python's two error modes — strict (fail on the first bad
/// byte) and replacing (U+FFFD for each bad sequence, with the same sequence lengths as
/// CPython's codecs, so fallbacks read exactly like pydicom's). The character tables are
/// glibc's (iconv); where glibc and Python's tables differ, the Python mapping is patched in
/// (found by comparing every code of every character set, see docs/DICOM.md).

/// UTF-8 output written into preallocated memory (see `TextCodec.outputBound`).
struct UTF8Sink {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var count = 0

    @inline(__always) mutating func byte(_ b: UInt8) {
        // `outputBound` makes this unreachable; stop rather than write past the buffer.
        precondition(count < capacity, "text decoder output bound exceeded")
        base[count] = b
        count += 1
    }

    @inline(__always) mutating func scalar(_ v: UInt32) {
        if v < 0x80 {
            byte(UInt8(v))
        } else if v < 0x800 {
            byte(UInt8(0xC0 | (v >> 6))); byte(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x1_0000 {
            byte(UInt8(0xE0 | (v >> 12))); byte(UInt8(0x80 | ((v >> 6) & 0x3F))); byte(UInt8(0x80 | (v & 0x3F)))
        } else {
            byte(UInt8(0xF0 | (v >> 18))); byte(UInt8(0x80 | ((v >> 12) & 0x3F)))
            byte(UInt8(0x80 | ((v >> 6) & 0x3F))); byte(UInt8(0x80 | (v & 0x3F)))
        }
    }

    @inline(__always) mutating func replacement() { scalar(0xFFFD) }

    var free: UnsafeMutableBufferPointer<UInt8> {
        UnsafeMutableBufferPointer(start: base + count, count: capacity - count)
    }
}

/// One entry of the decoder list derived from (0008,0005).
struct TextCodec: Sendable, Hashable {
    /// pydicom's name for the decoder ("iso8859", "latin_1", "iso_ir_126", "euc_kr", … or the
    /// term itself when pydicom took it for a Python codec name). Escape sequences select a
    /// decoder only when its name is in the list, as in pydicom.
    let name: String
    let kind: Kind

    enum Kind: Sendable, Hashable {
        /// ISO 8859-1; also the default repertoire, which pydicom reads as Latin-1.
        case latin1
        case ascii
        case singleByte(SingleByteCharset)
        case utf8
        case shiftJIS
        case iso2022JP
        case iso2022JP2
        case eucKR
        case gb2312
        case gbk
        case gb18030
    }

    /// Output bytes that suffice for decoding `n` input bytes with any decoder here: every
    /// input byte gives at most 3 UTF-8 bytes (U+FFFD, BMP characters of 2-byte codes), and
    /// 4-byte GB 18030 codes give at most 4.
    static func outputBound(_ n: Int) -> Int { 3 * n + 8 }

    /// Python `bytes.decode(codec)`: false (and the sink unchanged) on the first error.
    func decodeStrict(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink) -> Bool {
        let start = sink.count
        let ok = decode(b, into: &sink, replacing: false)
        if !ok { sink.count = start }
        return ok
    }

    /// Python `bytes.decode(codec, errors="replace")`.
    func decodeReplacing(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink) {
        _ = decode(b, into: &sink, replacing: true)
    }

    private func decode(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink, replacing: Bool) -> Bool {
        switch kind {
        case .latin1:
            for c in b { sink.scalar(UInt32(c)) }
            return true
        case .ascii:
            for c in b {
                if c < 0x80 { sink.byte(c) } else if replacing { sink.replacement() } else { return false }
            }
            return true
        case .singleByte(let charset):
            let table = charset.table.scalars
            for c in b {
                let v = table[Int(c)]
                if v != SingleByteTable.undefined { sink.scalar(v) } else if replacing { sink.replacement() } else { return false }
            }
            return true
        case .utf8:
            return UTF8Text.decode(b, into: &sink, replacing: replacing)
        case .shiftJIS:
            return MultiByteDecoder<ShiftJIS>.decode(b, into: &sink, replacing: replacing)
        case .eucKR:
            return MultiByteDecoder<EUCKR>.decode(b, into: &sink, replacing: replacing)
        case .gb2312:
            return MultiByteDecoder<EUCCN>.decode(b, into: &sink, replacing: replacing)
        case .gbk:
            return MultiByteDecoder<GBK>.decode(b, into: &sink, replacing: replacing)
        case .gb18030:
            return MultiByteDecoder<GB18030>.decode(b, into: &sink, replacing: replacing)
        case .iso2022JP:
            return ISO2022JP.decode(b, into: &sink, replacing: replacing, jp2: false)
        case .iso2022JP2:
            return ISO2022JP.decode(b, into: &sink, replacing: replacing, jp2: true)
        }
    }
}

/// Single-byte character sets, decoded through tables built once with iconv.
enum SingleByteCharset: String, Sendable, Hashable, CaseIterable {
    case iso8859_2 = "ISO-8859-2", iso8859_3 = "ISO-8859-3", iso8859_4 = "ISO-8859-4"
    case iso8859_5 = "ISO-8859-5", iso8859_6 = "ISO-8859-6", iso8859_7 = "ISO-8859-7"
    case iso8859_8 = "ISO-8859-8", iso8859_9 = "ISO-8859-9", iso8859_10 = "ISO-8859-10"
    case iso8859_11 = "ISO-8859-11", iso8859_13 = "ISO-8859-13", iso8859_14 = "ISO-8859-14"
    case iso8859_15 = "ISO-8859-15", iso8859_16 = "ISO-8859-16", tis620 = "TIS-620"
    case cp1250 = "CP1250", cp1251 = "CP1251", cp1252 = "CP1252", cp1253 = "CP1253", cp1254 = "CP1254"
    case cp1256 = "CP1256", cp1257 = "CP1257", koi8r = "KOI8-R", koi8u = "KOI8-U", cp874 = "CP874"

    var table: SingleByteTable {
        switch self {
        case .iso8859_2: return Tables.iso8859_2
        case .iso8859_3: return Tables.iso8859_3
        case .iso8859_4: return Tables.iso8859_4
        case .iso8859_5: return Tables.iso8859_5
        case .iso8859_6: return Tables.iso8859_6
        case .iso8859_7: return Tables.iso8859_7
        case .iso8859_8: return Tables.iso8859_8
        case .iso8859_9: return Tables.iso8859_9
        case .iso8859_10: return Tables.iso8859_10
        case .iso8859_11: return Tables.iso8859_11
        case .iso8859_13: return Tables.iso8859_13
        case .iso8859_14: return Tables.iso8859_14
        case .iso8859_15: return Tables.iso8859_15
        case .iso8859_16: return Tables.iso8859_16
        case .tis620: return Tables.tis620
        case .cp1250: return Tables.cp1250
        case .cp1251: return Tables.cp1251
        case .cp1252: return Tables.cp1252
        case .cp1253: return Tables.cp1253
        case .cp1254: return Tables.cp1254
        case .cp1256: return Tables.cp1256
        case .cp1257: return Tables.cp1257
        case .koi8r: return Tables.koi8r
        case .koi8u: return Tables.koi8u
        case .cp874: return Tables.cp874
        }
    }

    /// Static lets: built on first use, thread-safely, then shared.
    private enum Tables {
        static let iso8859_2 = SingleByteTable(iconvName: "ISO-8859-2")
        static let iso8859_3 = SingleByteTable(iconvName: "ISO-8859-3")
        static let iso8859_4 = SingleByteTable(iconvName: "ISO-8859-4")
        static let iso8859_5 = SingleByteTable(iconvName: "ISO-8859-5")
        static let iso8859_6 = SingleByteTable(iconvName: "ISO-8859-6")
        static let iso8859_7 = SingleByteTable(iconvName: "ISO-8859-7")
        static let iso8859_8 = SingleByteTable(iconvName: "ISO-8859-8")
        static let iso8859_9 = SingleByteTable(iconvName: "ISO-8859-9")
        static let iso8859_10 = SingleByteTable(iconvName: "ISO-8859-10")
        static let iso8859_11 = SingleByteTable(iconvName: "ISO-8859-11")
        static let iso8859_13 = SingleByteTable(iconvName: "ISO-8859-13")
        static let iso8859_14 = SingleByteTable(iconvName: "ISO-8859-14")
        static let iso8859_15 = SingleByteTable(iconvName: "ISO-8859-15")
        static let iso8859_16 = SingleByteTable(iconvName: "ISO-8859-16")
        // Python's tis_620 passes the C1 controls 0x80-0x9F through; glibc's TIS-620 has none.
        static let tis620 = SingleByteTable(iconvName: "TIS-620") { (0x80...0x9F).contains($0) ? UInt32($0) : nil }
        static let cp1250 = SingleByteTable(iconvName: "CP1250")
        static let cp1251 = SingleByteTable(iconvName: "CP1251")
        static let cp1252 = SingleByteTable(iconvName: "CP1252")
        static let cp1253 = SingleByteTable(iconvName: "CP1253")
        static let cp1254 = SingleByteTable(iconvName: "CP1254")
        static let cp1256 = SingleByteTable(iconvName: "CP1256")
        static let cp1257 = SingleByteTable(iconvName: "CP1257")
        static let koi8r = SingleByteTable(iconvName: "KOI8-R")
        static let koi8u = SingleByteTable(iconvName: "KOI8-U")
        static let cp874 = SingleByteTable(iconvName: "CP874")
    }
}

// MARK: UTF-8

enum UTF8Text {
    /// Strict: copies valid UTF-8 through. Replacing: one U+FFFD per maximal invalid
    /// subsequence (Unicode's recommended practice, which CPython's decoder follows too).
    static func decode(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink, replacing: Bool) -> Bool {
        var parser = Unicode.UTF8.ForwardParser()
        var it = b.makeIterator()
        let start = sink.count
        loop: while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let encoded):
                for u in encoded { sink.byte(u) }
            case .emptyInput:
                break loop
            case .error:
                if !replacing { sink.count = start; return false }
                sink.replacement()
            }
        }
        return true
    }
}

// MARK: multibyte character sets

/// What a multibyte character set's structure says about the bytes at one position, in
/// the terms of CPython's decoder for it.
enum MultiByteUnit {
    /// One byte that stands for itself (ASCII).
    case byte(UInt8)
    /// A character decoded without iconv (tables patched to Python's, katakana, jamo), and
    /// how many input bytes it used.
    case scalar(UInt32, length: Int)
    /// A character iconv converts: `length` input bytes whose iconv form is the `count` bytes
    /// packed big-endian in `converted` (the same bytes, or EUC-JP for Shift JIS).
    case mapped(length: Int, converted: UInt32, count: Int)
    /// An invalid byte: Python replaces one byte and goes on with the next.
    case invalid
    /// The input ends inside a character: Python replaces the rest with one U+FFFD.
    case incomplete
}

protocol MultiByteScheme {
    static var iconv: IconvPool { get }
    static func unit(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit
}

enum MultiByteDecoder<Scheme: MultiByteScheme> {
    /// Strict: converts each run of mapped characters with one iconv call. Replacing (only
    /// after a strict failure): one iconv call per character, so an unmapped one is replaced
    /// alone, as CPython does.
    static func decode(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink, replacing: Bool) -> Bool {
        let start = sink.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: b.count + 4) { scratch -> Bool in
            var pending = 0  // converted bytes waiting in `scratch`
            func flush(_ sink: inout UTF8Sink) -> Bool {
                guard pending > 0 else { return true }
                let run = UnsafeBufferPointer(rebasing: scratch[0..<pending])
                pending = 0
                guard let n = Scheme.iconv.convert(run, into: sink.free) else { return false }
                sink.count += n
                return true
            }
            var i = 0
            while i < b.count {
                switch Scheme.unit(b, at: i) {
                case .byte(let c):
                    if pending > 0 { scratch[pending] = c; pending += 1 } else { sink.byte(c) }
                    i += 1
                case .scalar(let v, let length):
                    if !flush(&sink) { sink.count = start; return false }
                    sink.scalar(v)
                    i += length
                case .mapped(let length, let converted, let count):
                    for k in 0..<count {
                        scratch[pending + k] = UInt8(truncatingIfNeeded: converted >> UInt32(8 * (count - 1 - k)))
                    }
                    pending += count
                    if replacing && !flush(&sink) {
                        sink.replacement()
                        i += 1
                    } else {
                        i += length
                    }
                case .invalid:
                    if !replacing || !flush(&sink) { sink.count = start; return false }
                    sink.replacement()
                    i += 1
                case .incomplete:
                    if !replacing || !flush(&sink) { sink.count = start; return false }
                    sink.replacement()
                    i = b.count
                }
            }
            if !flush(&sink) { sink.count = start; return false }
            return true
        }
    }
}

/// Shift JIS (ISO_IR 13, ESC ) I, ESC ( J) as Python's shift_jis reads it: ASCII (0x5C is a
/// backslash, not a yen sign), JIS X 0201 katakana, JIS X 0208 double bytes (via EUC-JP).
enum ShiftJIS: MultiByteScheme {
    static var iconv: IconvPool { Iconv.eucJP }

    @inline(__always) static func unit(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit {
        let c = b[i]
        if c < 0x80 { return .byte(c) }
        if c >= 0xA1 && c <= 0xDF { return .scalar(0xFF61 + UInt32(c - 0xA1), length: 1) }
        guard (c >= 0x81 && c <= 0x9F) || (c >= 0xE0 && c <= 0xEF) else { return .invalid }
        guard i + 1 < b.count else { return .incomplete }
        let c2 = b[i + 1]
        guard (c2 >= 0x40 && c2 <= 0x7E) || (c2 >= 0x80 && c2 <= 0xFC) else { return .invalid }
        let lead = c < 0xE0 ? c - 0x81 : c - 0xC1
        let trail = c2 < 0x80 ? c2 - 0x40 : c2 - 0x41
        let row = 2 * lead + (trail < 0x5E ? 0 : 1) + 0x21
        let cell = (trail < 0x5E ? trail : trail - 0x5E) + 0x21
        if row == 0x21 && cell == 0x40 { return .scalar(0xFF3C, length: 2) }  // FULLWIDTH REVERSE SOLIDUS
        return .mapped(length: 2, converted: UInt32(row | 0x80) << 8 | UInt32(cell | 0x80), count: 2)
    }
}

/// EUC-KR (KS X 1001, ISO 2022 IR 149) as Python's euc_kr reads it, including the
/// KS X 1001:1998 Annex 3 make-up sequences (filler + three jamo = one syllable).
enum EUCKR: MultiByteScheme {
    static var iconv: IconvPool { Iconv.eucKR }

    /// Compatibility jamo 0xA4A1...0xA4BE (U+3131...U+314E) as initial-consonant and
    /// final-consonant indices of Unicode's syllable composition (-1: cannot stand there).
    /// Derived by matching the jamo names (KIYEOK, SSANGKIYEOK, …) with U+1100... and U+11A8....
    static let initial: [Int8] = [0, 1, -1, 2, -1, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, 6, 7, 8, -1, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    static let final: [Int8] = [1, 2, 3, 4, 5, 6, 7, -1, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, -1, 18, 19, 20, 21, 22, -1, 23, 24, 25, 26, 27]

    @inline(__always) static func unit(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit {
        let c = b[i]
        if c < 0x80 { return .byte(c) }
        guard i + 1 < b.count else { return .incomplete }
        let c2 = b[i + 1]
        if c == 0xA4 && c2 == 0xD4 { return makeUp(b, at: i) }
        guard c >= 0xA1, c <= 0xFE, c2 >= 0xA1, c2 <= 0xFE else { return .invalid }
        if c == 0xA2 && c2 == 0xE8 { return .invalid }  // added in KS X 1001:2002; not in Python's table
        return .mapped(length: 2, converted: UInt32(c) << 8 | UInt32(c2), count: 2)
    }

    static func makeUp(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit {
        guard i + 8 <= b.count else { return .incomplete }
        guard b[i + 2] == 0xA4, b[i + 4] == 0xA4, b[i + 6] == 0xA4 else { return .invalid }
        let c3 = b[i + 3], c5 = b[i + 5], c7 = b[i + 7]
        let cho: Int = (0xA1...0xBE).contains(c3) ? Int(initial[Int(c3 - 0xA1)]) : -1
        let jung: Int = (0xBF...0xD3).contains(c5) ? Int(c5 - 0xBF) : -1
        let jong: Int = c7 == 0xD4 ? 0 : (0xA1...0xBE).contains(c7) ? Int(final[Int(c7 - 0xA1)]) : -1
        guard cho >= 0, jung >= 0, jong >= 0 else { return .invalid }
        return .scalar(UInt32(0xAC00 + cho * 588 + jung * 28 + jong), length: 8)
    }
}

/// EUC-CN (GB 2312: "ISO 2022 IR 58", "ISO 2022 58").
enum EUCCN: MultiByteScheme {
    static var iconv: IconvPool { Iconv.eucCN }

    @inline(__always) static func unit(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit {
        let c = b[i]
        if c < 0x80 { return .byte(c) }
        guard i + 1 < b.count else { return .incomplete }
        let c2 = b[i + 1]
        guard c >= 0xA1, c <= 0xFE, c2 >= 0xA1, c2 <= 0xFE else { return .invalid }
        return .mapped(length: 2, converted: UInt32(c) << 8 | UInt32(c2), count: 2)
    }
}

/// GBK ("GBK", "ISO 2022 GBK").
enum GBK: MultiByteScheme {
    static var iconv: IconvPool { Iconv.gbk }

    @inline(__always) static func unit(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit {
        let c = b[i]
        if c < 0x80 { return .byte(c) }
        guard i + 1 < b.count else { return .incomplete }
        let c2 = b[i + 1]
        // glibc reads a lone 0x80 as the euro sign; Python's gbk does not.
        guard c >= 0x81, c <= 0xFE, (c2 >= 0x40 && c2 <= 0x7E) || (c2 >= 0x80 && c2 <= 0xFE) else { return .invalid }
        return .mapped(length: 2, converted: UInt32(c) << 8 | UInt32(c2), count: 2)
    }
}

/// GB 18030 as Python's gb18030 reads it (the 2005 mapping: glibc follows GB 18030-2022,
/// which moved 25 two-byte codes out of the private use area and dropped the four-byte codes
/// of the characters they now map to).
enum GB18030: MultiByteScheme {
    static var iconv: IconvPool { Iconv.gb18030 }

    @inline(__always) static func unit(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> MultiByteUnit {
        let c = b[i]
        if c < 0x80 { return .byte(c) }
        guard i + 1 < b.count else { return .incomplete }
        let c2 = b[i + 1]
        if c2 >= 0x30 && c2 <= 0x39 {
            guard i + 3 < b.count else { return .incomplete }
            let c3 = b[i + 2], c4 = b[i + 3]
            guard c >= 0x81, c <= 0xFE, c3 >= 0x81, c3 <= 0xFE, c4 >= 0x30, c4 <= 0x39 else { return .invalid }
            let code = UInt32(c) << 24 | UInt32(c2) << 16 | UInt32(c3) << 8 | UInt32(c4)
            if let v = fourByte2005(code) { return .scalar(v, length: 4) }
            // Only BMP codes below 0x8431A530 and supplementary codes 0x90308130... exist.
            let linearBMP = ((Int(c) - 0x81) * 10 + Int(c2) - 0x30) * 1260 + (Int(c3) - 0x81) * 10 + Int(c4) - 0x30
            if c - 0x81 < 4 {
                guard linearBMP < 39420 else { return .invalid }
            } else if c - 0x81 >= 15 {
                let supplementary = 0x1_0000 + ((Int(c) - 0x81 - 15) * 10 + Int(c2) - 0x30) * 1260 + (Int(c3) - 0x81) * 10 + Int(c4) - 0x30
                guard supplementary <= 0x10_FFFF else { return .invalid }
                return .scalar(UInt32(supplementary), length: 4)
            } else {
                return .invalid
            }
            return .mapped(length: 4, converted: code, count: 4)
        }
        guard c >= 0x81, c <= 0xFE, (c2 >= 0x40 && c2 <= 0x7E) || (c2 >= 0x80 && c2 <= 0xFE) else { return .invalid }
        if let v = twoByte2005(UInt16(c) << 8 | UInt16(c2)) { return .scalar(v, length: 2) }
        return .mapped(length: 2, converted: UInt32(c) << 8 | UInt32(c2), count: 2)
    }

    /// Two-byte codes that GB 18030-2005 (and Python) map into the private use area.
    static func twoByte2005(_ code: UInt16) -> UInt32? {
        switch code {
        case 0xA6D9...0xA6DF: return 0xE78D + UInt32(code - 0xA6D9)
        case 0xA6EC: return 0xE794
        case 0xA6ED: return 0xE795
        case 0xA6F3: return 0xE796
        case 0xA8BC: return 0xE7C7
        case 0xFE51: return 0xE816
        case 0xFE52: return 0xE817
        case 0xFE53: return 0xE818
        case 0xFE59: return 0xE81E
        case 0xFE61: return 0xE826
        case 0xFE66: return 0xE82B
        case 0xFE67: return 0xE82C
        case 0xFE6C: return 0xE831
        case 0xFE6D: return 0xE832
        case 0xFE76: return 0xE83B
        case 0xFE7E: return 0xE843
        case 0xFE90: return 0xE854
        case 0xFE91: return 0xE855
        case 0xFEA0: return 0xE864
        default: return nil
        }
    }

    /// Four-byte codes whose 2005 mapping glibc does not have.
    static func fourByte2005(_ code: UInt32) -> UInt32? {
        switch code {
        case 0x8135_F437: return 0x1E3F
        case 0x8235_9037...0x8235_9039: return 0x9FB4 + (code - 0x8235_9037)
        case 0x8235_9130...0x8235_9134: return 0x9FB7 + (code - 0x8235_9130)
        case 0x8431_8236...0x8431_8239: return 0xFE10 + (code - 0x8431_8236)
        case 0x8431_8330...0x8431_8335: return 0xFE14 + (code - 0x8431_8330)
        default: return nil
        }
    }
}
