import Synchronization

/// Specific Character Set (0008,0005) and the decoding of text values with it (PS3.5 6.1,
/// PS3.3 C.12.1.1.2), following pydicom 3.0.2 (`pydicom.charset`) term for term.
///
/// The terms become a list of decoders: value 1 decodes everything up to the first escape
/// sequence; each ESC starts a fragment decoded with the character set its escape sequence
/// designates (when (0008,0005) lists it), and a CR, LF, TAB or FF inside a G1 fragment
/// returns to value 1. Bytes a decoder cannot decode make pydicom fall back to value 1 with
/// U+FFFD replacement characters for that fragment, and so do we.
///
/// Decoding is lazy (`DataSet.string(_:)` calls `decode` on the raw bytes); ASCII without
/// escapes takes a fast path.
public struct SpecificCharacterSet: Sendable, Equatable, CustomStringConvertible {
    let storage: Storage

    final class Storage: Sendable {
        let terms: [String]
        let codecs: [TextCodec]
        let warnings: [String]
        /// Per entry of `escapeNames`: the decoder its escape sequence selects, or nil when
        /// (0008,0005) does not list it (then the fragment is read with value 1).
        let escapeCodecs: [TextCodec?]

        init(terms: [String], codecs: [TextCodec], warnings: [String]) {
            self.terms = terms
            self.codecs = codecs
            self.warnings = warnings
            escapeCodecs = SpecificCharacterSet.escapeNames.map { name in
                guard name == SpecificCharacterSet.defaultCodec.name || codecs.contains(where: { $0.name == name }) else { return nil }
                return SpecificCharacterSet.codec(pythonName: name, name: name)
            }
        }
    }

    /// The (0008,0005) values as read (empty for the default repertoire).
    public var terms: [String] { storage.terms }
    /// What was wrong with the terms (unknown, misspelled, stand-alone terms with code
    /// extensions), as pydicom warns about it. Never contains patient data.
    public var warnings: [String] { storage.warnings }

    /// No (0008,0005): the default repertoire, which pydicom (and so this reader) decodes as
    /// Latin-1.
    public static let `default` = SpecificCharacterSet(terms: [])
    static let utf8 = SpecificCharacterSet(terms: ["ISO_IR 192"])

    /// Terms as written in (0008,0005), value 1 first.
    public init(terms: [String]) {
        var warnings: [String] = []
        var terms = terms
        var codecs: [TextCodec]
        if terms.isEmpty {
            codecs = [SpecificCharacterSet.defaultCodec]
        } else {
            var lookupTerms = terms
            if lookupTerms.count > 1 && lookupTerms[0].isEmpty { lookupTerms[0] = "ISO_IR 6" }
            codecs = lookupTerms.map { SpecificCharacterSet.codec(forTerm: $0, warnings: &warnings) }
            if lookupTerms.count > 1 {
                if SpecificCharacterSet.standAlone.contains(lookupTerms[0]) {
                    warnings.append("'\(lookupTerms[0])' does not allow code extensions; ignoring \(lookupTerms.dropFirst().joined(separator: ", "))")
                    codecs = [codecs[0]]
                } else {
                    for k in stride(from: lookupTerms.count - 1, through: 1, by: -1) where SpecificCharacterSet.standAlone.contains(lookupTerms[k]) {
                        warnings.append("'\(lookupTerms[k])' cannot be a code extension; ignoring it")
                        codecs.remove(at: k)
                    }
                }
            }
            if terms == [""] { terms = [] }
        }
        storage = Storage(terms: terms, codecs: codecs, warnings: warnings)
    }

    /// The raw value of (0008,0005): CS text, trailing padding removed, split at `\`.
    /// Parsed values are cached (a few distinct values recur in every file of a site), so a
    /// read costs a lookup, not a parse (~1.3 µs).
    public init(elementValue bytes: [UInt8]) {
        if let known = SpecificCharacterSet.parsed.withLock({ $0[bytes] }) {
            self = known
            return
        }
        self.init(parsing: bytes)
        let value = self
        SpecificCharacterSet.parsed.withLock { cache in
            if cache.count < 64 { cache[bytes] = value }
        }
    }

    private static let parsed = Mutex<[[UInt8]: SpecificCharacterSet]>([:])

    private init(parsing bytes: [UInt8]) {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x00 { end -= 1 }
        if end == 0 {
            self.init(terms: [])
            return
        }
        let text = String(bytes[0..<end].map { Character(Unicode.Scalar($0)) })  // CS is default repertoire
        self.init(terms: text.split(separator: "\\", omittingEmptySubsequences: false).map(String.init))
    }

    public var description: String { terms.joined(separator: "\\") }

    /// Value 1 is ISO_IR 192.
    public var isUTF8: Bool { storage.codecs.first?.kind == .utf8 }

    public static func == (a: SpecificCharacterSet, b: SpecificCharacterSet) -> Bool {
        a.storage === b.storage || (a.storage.terms == b.storage.terms && a.storage.codecs == b.storage.codecs)
    }

    // MARK: decoding

    /// Decodes a text value (SH, LO, ST, LT, UT, PN, UC) as pydicom's `decode_bytes` does with
    /// the text delimiters (CR, LF, TAB, FF).
    public func decode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { decode($0).text }
    }

    /// The text, and whether some bytes could not be decoded and were replaced (U+FFFD, or
    /// the fragment read with value 1 — where pydicom warns).
    public func decodeReportingReplacements(_ bytes: [UInt8]) -> (text: String, replaced: Bool) {
        bytes.withUnsafeBufferPointer { decode($0) }
    }

    func decode(_ b: UnsafeBufferPointer<UInt8>) -> (text: String, replaced: Bool) {
        var plain = true
        for c in b where c >= 0x80 || c == ISO2022JP.esc {
            plain = false
            break
        }
        // Every decoder here reads ASCII as ASCII; only escapes and high bytes need work.
        if plain { return (String(decoding: b, as: UTF8.self), false) }
        if storage.codecs[0].kind == .utf8 && b.firstIndex(of: ISO2022JP.esc) == nil {
            // The standard library's validator, and its repair (one U+FFFD per maximal invalid
            // subsequence, as Python replaces).
            if let valid = String(validating: b, as: UTF8.self) { return (valid, false) }
            return (String(decoding: b, as: UTF8.self), true)
        }
        var replaced = false
        let text = String(unsafeUninitializedCapacity: TextCodec.outputBound(b.count)) { out in
            var sink = UTF8Sink(base: out.baseAddress!, capacity: out.count)
            replaced = decode(b, into: &sink)
            return sink.count
        }
        return (text, replaced)
    }

    /// Returns true when something had to be replaced.
    private func decode(_ b: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink) -> Bool {
        let first = storage.codecs[0]
        guard let firstEscape = b.firstIndex(of: ISO2022JP.esc) else {
            if first.decodeStrict(b, into: &sink) { return false }
            first.decodeReplacing(b, into: &sink)
            return true
        }
        var replaced = false
        var start = 0
        var next = firstEscape
        while start < b.count {
            let fragment = UnsafeBufferPointer(rebasing: b[start..<next])
            if !fragment.isEmpty {
                let saved = sink.count
                let ok = fragment[0] == ISO2022JP.esc ? decodeEscaped(fragment, into: &sink) : first.decodeStrict(fragment, into: &sink)
                if !ok {
                    sink.count = saved
                    first.decodeReplacing(fragment, into: &sink)
                    replaced = true
                }
            }
            start = next
            next = start + 1 < b.count ? (b[(start + 1)...].firstIndex(of: ISO2022JP.esc) ?? b.count) : b.count
        }
        return replaced
    }

    /// A fragment that starts with ESC; false when it must be read with value 1 instead.
    private func decodeEscaped(_ f: UnsafeBufferPointer<UInt8>, into sink: inout UTF8Sink) -> Bool {
        let length = f.count >= 3 && f[1] == 0x24 && (f[2] == 0x28 || f[2] == 0x29) ? 4 : 3
        guard f.count >= length, let k = SpecificCharacterSet.escapeIndex(f, length: length),
              let codec = storage.escapeCodecs[k] else { return false }
        let codecs = storage.codecs
        if codec.kind == .iso2022JP || codec.kind == .iso2022JP2 {
            return codec.decodeStrict(f, into: &sink)  // these read their escape sequence themselves
        }
        let rest = UnsafeBufferPointer(rebasing: f[length...])
        if let d = rest.firstIndex(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x09 || $0 == 0x0C }) {
            return codec.decodeStrict(UnsafeBufferPointer(rebasing: rest[..<d]), into: &sink)
                && codecs[0].decodeStrict(UnsafeBufferPointer(rebasing: rest[d...]), into: &sink)
        }
        return codec.decodeStrict(rest, into: &sink)
    }

    // MARK: terms

    static let defaultCodec = TextCodec(name: "iso8859", kind: .latin1)
    static let standAlone: Set<String> = ["ISO_IR 192", "GBK", "GB18030"]

    /// pydicom's `python_encoding`, plus ISO_IR 203 (Latin-9), which pydicom 3.0.2 lacks.
    static let termNames: [String: String] = {
        var t: [String: String] = [
            "": "iso8859", "ISO_IR 6": "iso8859", "ISO 2022 IR 6": "iso8859",
            "ISO_IR 13": "shift_jis", "ISO 2022 IR 13": "shift_jis",
            "ISO 2022 IR 87": "iso2022_jp", "ISO 2022 IR 159": "iso2022_jp_2", "ISO 2022 IR 149": "euc_kr",
            "ISO 2022 IR 58": "iso_ir_58", "ISO_IR 192": "UTF8", "GB18030": "GB18030",
            "ISO 2022 GBK": "GBK", "ISO 2022 58": "GB2312", "GBK": "GBK",
        ]
        let singleByte = ["100": "latin_1", "101": "iso8859_2", "109": "iso8859_3", "110": "iso8859_4",
                          "126": "iso_ir_126", "127": "iso_ir_127", "138": "iso_ir_138", "144": "iso_ir_144",
                          "148": "iso_ir_148", "166": "iso_ir_166", "203": "iso8859_15"]
        for (number, name) in singleByte {
            t["ISO_IR " + number] = name
            t["ISO 2022 IR " + number] = name
        }
        return t
    }()

    /// The decoder for each name pydicom uses.
    static let kindsByName: [String: TextCodec.Kind] = [
        "iso8859": .latin1, "latin_1": .latin1, "shift_jis": .shiftJIS, "iso2022_jp": .iso2022JP,
        "iso2022_jp_2": .iso2022JP2, "euc_kr": .eucKR, "iso_ir_58": .gb2312, "UTF8": .utf8,
        "GB18030": .gb18030, "GBK": .gbk, "GB2312": .gb2312,
        "iso8859_2": .singleByte(.iso8859_2), "iso8859_3": .singleByte(.iso8859_3), "iso8859_4": .singleByte(.iso8859_4),
        "iso_ir_126": .singleByte(.iso8859_7), "iso_ir_127": .singleByte(.iso8859_6), "iso_ir_138": .singleByte(.iso8859_8),
        "iso_ir_144": .singleByte(.iso8859_5), "iso_ir_148": .singleByte(.iso8859_9), "iso_ir_166": .singleByte(.tis620),
        "iso8859_15": .singleByte(.iso8859_15),
    ]

    /// pydicom's CODES_TO_ENCODINGS (PS3.3 Tables C.12-3 and C.12-4), plus ESC - b (ISO_IR 203):
    /// the decoder names, indexed by `escapeIndex`.
    static let escapeNames = [
        "iso8859", "shift_jis", "iso2022_jp", "latin_1", "iso8859_2", "iso8859_3", "iso8859_4", "iso_ir_126",
        "iso_ir_127", "iso_ir_138", "iso_ir_144", "iso_ir_148", "iso_ir_166", "iso8859_15",
        "euc_kr", "iso2022_jp_2", "iso_ir_58",
    ]

    static func escapeIndex(_ f: UnsafeBufferPointer<UInt8>, length: Int) -> Int? {
        let i = f[1], f2 = f[2]
        if length == 4 {
            switch (i, f2, f[3]) {
            case (0x24, 0x29, 0x43): return 14  // ESC $ ) C  KS X 1001
            case (0x24, 0x28, 0x44): return 15  // ESC $ ( D  JIS X 0212
            case (0x24, 0x29, 0x41): return 16  // ESC $ ) A  GB 2312
            default: return nil
            }
        }
        switch (i, f2) {
        case (0x28, 0x42): return 0   // ESC ( B  ASCII
        case (0x28, 0x4A): return 1   // ESC ( J  JIS X 0201 Romaji (Python's shift_jis)
        case (0x29, 0x49): return 1   // ESC ) I  JIS X 0201 Katakana
        case (0x24, 0x42): return 2   // ESC $ B  JIS X 0208
        case (0x2D, 0x41): return 3   // ESC - A  ISO 8859-1
        case (0x2D, 0x42): return 4
        case (0x2D, 0x43): return 5
        case (0x2D, 0x44): return 6
        case (0x2D, 0x46): return 7   // Greek
        case (0x2D, 0x47): return 8   // Arabic
        case (0x2D, 0x48): return 9   // Hebrew
        case (0x2D, 0x4C): return 10  // Cyrillic
        case (0x2D, 0x4D): return 11  // Latin-5
        case (0x2D, 0x54): return 12  // Thai
        case (0x2D, 0x62): return 13  // Latin-9
        default: return nil
        }
    }

    static func codec(pythonName: String, name: String) -> TextCodec? {
        kindsByName[pythonName].map { TextCodec(name: name, kind: $0) }
    }

    /// pydicom's `convert_encodings` for one term: the table, then two common misspellings
    /// ("ISO IR 100", "ISO-2022-IR-87"), then the term as a Python codec name; otherwise a
    /// warning and the default.
    static func codec(forTerm term: String, warnings: inout [String]) -> TextCodec {
        if let name = termNames[term], let codec = codec(pythonName: name, name: name) { return codec }
        let scalars = Array(term.unicodeScalars)
        func matches(_ pattern: String) -> Bool {  // "?" stands for any character
            let p = Array(pattern.unicodeScalars)
            guard scalars.count >= p.count else { return false }
            return zip(p, scalars).allSatisfy { $0 == "?" || $0 == $1 }
        }
        var patched: String?
        if matches("ISO?IR"), scalars[3] != "_" {
            patched = "ISO_IR" + String(String.UnicodeScalarView(scalars.dropFirst(6)))
        } else if matches("ISO?2022?IR?"), !term.hasPrefix("ISO 2022 IR ") {
            patched = "ISO 2022 IR " + String(String.UnicodeScalarView(scalars.dropFirst(12)))
        }
        if let patched {
            if let name = termNames[patched], let codec = codec(pythonName: name, name: name) {
                warnings.append("incorrect Specific Character Set '\(term)', assuming '\(patched)'")
                return codec
            }
            warnings.append("unknown Specific Character Set '\(term)', using the default repertoire")
            return defaultCodec
        }
        if let kind = pythonCodecKind(term) { return TextCodec(name: term, kind: kind) }
        warnings.append("unknown Specific Character Set '\(term)', using the default repertoire")
        return defaultCodec
    }

    /// pydicom accepts a term Python's `codecs.lookup` knows. Supported here: the ASCII-based
    /// codecs glibc has with the same tables as Python (checked byte for byte), under Python's
    /// names and aliases after its name normalisation.
    static func pythonCodecKind(_ term: String) -> TextCodec.Kind? {
        var normalized = ""
        var punctuation = false
        for u in term.lowercased().unicodeScalars {
            if u.properties.isAlphabetic || u.properties.numericType != nil || u == "." {
                if punctuation && !normalized.isEmpty { normalized += "_" }
                if u.isASCII { normalized.unicodeScalars.append(u) }
                punctuation = false
            } else {
                punctuation = true
            }
        }
        return pythonCodecs[normalized] ?? pythonCodecs[normalized.replacingDots()]
    }

    static let pythonCodecs: [String: TextCodec.Kind] = {
        let groups: [(TextCodec.Kind, [String])] = [
            (.ascii, ["ascii", "646", "ansi_x3.4_1968", "ansi_x3_4_1968", "ansi_x3.4_1986", "cp367", "csascii", "ibm367",
                      "iso646_us", "iso_646.irv_1991", "iso_ir_6", "us", "us_ascii"]),
            (.latin1, ["latin_1", "8859", "cp819", "csisolatin1", "ibm819", "iso8859", "iso8859_1", "iso_8859_1",
                       "iso_8859_1_1987", "iso_ir_100", "l1", "latin", "latin1"]),
            (.singleByte(.iso8859_2), ["iso8859_2", "csisolatin2", "iso_8859_2", "iso_8859_2_1987", "iso_ir_101", "l2", "latin2"]),
            (.singleByte(.iso8859_3), ["iso8859_3", "csisolatin3", "iso_8859_3", "iso_8859_3_1988", "iso_ir_109", "l3", "latin3"]),
            (.singleByte(.iso8859_4), ["iso8859_4", "csisolatin4", "iso_8859_4", "iso_8859_4_1988", "iso_ir_110", "l4", "latin4"]),
            (.singleByte(.iso8859_5), ["iso8859_5", "csisolatincyrillic", "cyrillic", "iso_8859_5", "iso_8859_5_1988", "iso_ir_144"]),
            (.singleByte(.iso8859_6), ["iso8859_6", "arabic", "asmo_708", "csisolatinarabic", "ecma_114", "iso_8859_6",
                                       "iso_8859_6_1987", "iso_ir_127"]),
            (.singleByte(.iso8859_7), ["iso8859_7", "csisolatingreek", "ecma_118", "elot_928", "greek", "greek8", "iso_8859_7",
                                       "iso_8859_7_1987", "iso_ir_126"]),
            (.singleByte(.iso8859_8), ["iso8859_8", "csisolatinhebrew", "hebrew", "iso_8859_8", "iso_8859_8_1988", "iso_ir_138"]),
            (.singleByte(.iso8859_9), ["iso8859_9", "csisolatin5", "iso_8859_9", "iso_8859_9_1989", "iso_ir_148", "l5", "latin5"]),
            (.singleByte(.iso8859_10), ["iso8859_10", "csisolatin6", "iso_8859_10", "iso_8859_10_1992", "iso_ir_157", "l6", "latin6"]),
            (.singleByte(.iso8859_11), ["iso8859_11", "iso_8859_11", "iso_8859_11_2001", "thai"]),
            (.singleByte(.iso8859_13), ["iso8859_13", "iso_8859_13", "l7", "latin7"]),
            (.singleByte(.iso8859_14), ["iso8859_14", "iso_8859_14", "iso_8859_14_1998", "iso_celtic", "iso_ir_199", "l8", "latin8"]),
            (.singleByte(.iso8859_15), ["iso8859_15", "iso_8859_15", "l9", "latin9"]),
            (.singleByte(.iso8859_16), ["iso8859_16", "iso_8859_16", "iso_8859_16_2001", "iso_ir_226", "l10", "latin10"]),
            (.singleByte(.tis620), ["tis_620", "iso_ir_166", "tis620", "tis_620_0", "tis_620_2529_0", "tis_620_2529_1"]),
            (.singleByte(.cp1250), ["cp1250", "1250", "windows_1250"]),
            (.singleByte(.cp1251), ["cp1251", "1251", "windows_1251"]),
            (.singleByte(.cp1252), ["cp1252", "1252", "windows_1252"]),
            (.singleByte(.cp1253), ["cp1253", "1253", "windows_1253"]),
            (.singleByte(.cp1254), ["cp1254", "1254", "windows_1254"]),
            (.singleByte(.cp1256), ["cp1256", "1256", "windows_1256"]),
            (.singleByte(.cp1257), ["cp1257", "1257", "windows_1257"]),
            (.singleByte(.koi8r), ["koi8_r", "cskoi8r"]),
            (.singleByte(.koi8u), ["koi8_u"]),
            (.singleByte(.cp874), ["cp874"]),
            (.utf8, ["utf_8", "u8", "utf", "utf8", "utf8_ucs2", "utf8_ucs4", "cp65001"]),
            (.shiftJIS, ["shift_jis", "csshiftjis", "shiftjis", "sjis", "s_jis", "x_mac_japanese"]),
            (.eucKR, ["euc_kr", "euckr", "korean", "ks_c_5601", "ks_c_5601_1987", "ks_x_1001", "ksc5601", "ksx1001", "x_mac_korean"]),
            (.gb2312, ["gb2312", "chinese", "csiso58gb231280", "euc_cn", "euccn", "eucgb2312_cn", "gb2312_1980", "gb2312_80",
                       "iso_ir_58", "x_mac_simp_chinese"]),
            (.gbk, ["gbk", "936", "cp936", "ms936"]),
            (.gb18030, ["gb18030", "gb18030_2000"]),
            (.iso2022JP, ["iso2022_jp", "csiso2022jp", "iso2022jp", "iso_2022_jp"]),
            (.iso2022JP2, ["iso2022_jp_2", "iso2022jp_2", "iso_2022_jp_2"]),
        ]
        var table: [String: TextCodec.Kind] = [:]
        for (kind, names) in groups { for n in names { table[n] = kind } }
        return table
    }()
}

extension String {
    fileprivate func replacingDots() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "." ? "_" : $0 }))
    }
}
