/// Options for `DICOMFile.read`.
public struct ReadOptions: Sendable {
    /// Stop at the first top-level element at or after (7FE0,0010) Pixel Data without
    /// reading it (header-only read).
    public var stopBeforePixelData: Bool
    /// Keep what was read when the input ends early (as pydicom does) instead of throwing
    /// `dicom.truncated`; the problem is reported in `DICOMFile.truncation`.
    public var allowTruncated: Bool
    /// Maximum nesting of sequences (each sequence + item counts once).
    public var maxDepth: Int
    /// Upper bound on the inflated size of a deflated data set.
    public var maxInflatedBytes: Int

    public init(stopBeforePixelData: Bool = false, allowTruncated: Bool = false, maxDepth: Int = 32, maxInflatedBytes: Int = 1 << 30) {
        self.stopBeforePixelData = stopBeforePixelData
        self.allowTruncated = allowTruncated
        self.maxDepth = maxDepth
        self.maxInflatedBytes = maxInflatedBytes
    }

    public static var headerOnly: ReadOptions { ReadOptions(stopBeforePixelData: true) }
}

/// A parsed DICOM Part 10 file (or a bare data set without meta header).
public struct DICOMFile: Sendable {
    /// The 128-byte preamble, when present.
    public let preamble: [UInt8]?
    /// File meta information (group 0002); empty when the file has none.
    public let meta: DataSet
    public let dataSet: DataSet
    /// (0002,0010) from the meta header; nil when there is none.
    public let transferSyntaxUID: String?
    /// The syntax the data set was actually decoded with (guessed when there is no meta header).
    public let transferSyntax: TransferSyntax
    /// Set when `allowTruncated` let a short file through.
    public let truncation: DICOMError?
    /// The read stopped before pixel data (`stopBeforePixelData`).
    public let stoppedBeforePixelData: Bool

    public init(meta: DataSet, dataSet: DataSet, transferSyntax: TransferSyntax, preamble: [UInt8]? = nil) {
        self.preamble = preamble
        self.meta = meta
        self.dataSet = dataSet
        self.transferSyntaxUID = meta.string(.transferSyntaxUID)
        self.transferSyntax = transferSyntax
        self.truncation = nil
        self.stoppedBeforePixelData = false
    }

    init(preamble: [UInt8]?, meta: DataSet, dataSet: DataSet, transferSyntaxUID: String?, transferSyntax: TransferSyntax, truncation: DICOMError?, stopped: Bool) {
        self.preamble = preamble
        self.meta = meta
        self.dataSet = dataSet
        self.transferSyntaxUID = transferSyntaxUID
        self.transferSyntax = transferSyntax
        self.truncation = truncation
        self.stoppedBeforePixelData = stopped
    }

    public static func read(_ bytes: [UInt8], options: ReadOptions = ReadOptions()) throws -> DICOMFile {
        var pos = 0
        var preamble: [UInt8]?
        if bytes.count >= 132, bytes[128] == 0x44, bytes[129] == 0x49, bytes[130] == 0x43, bytes[131] == 0x4D {
            preamble = Array(bytes[0..<128])
            pos = 132
        } else if bytes.count >= 4, bytes[0] == 0x44, bytes[1] == 0x49, bytes[2] == 0x43, bytes[3] == 0x4D {
            pos = 4
        }
        if bytes.count - pos < 8 {
            if bytes.count == pos { throw DICOMError.malformed("no data set: input has \(bytes.count) bytes", offset: pos) }
            throw DICOMError.truncated("input ends inside the first element header", offset: pos)
        }

        var parser = Parser(bytes: bytes, options: options)
        parser.pos = pos
        var meta = DataSet()
        // The meta group is Explicit VR Little Endian; read it whenever the next group is 0002.
        if parser.peekGroupLE() == 0x0002 {
            meta = try parser.parseMeta()
        } else if pos == 132 || pos == 4 {
            throw DICOMError.malformed("'DICM' prefix is not followed by a file meta group", offset: pos)
        }
        let tsUID = meta.string(.transferSyntaxUID)
        var syntax: TransferSyntax
        if let tsUID, !tsUID.isEmpty {
            syntax = TransferSyntax.forUID(tsUID)
        } else {
            syntax = parser.guessSyntax()
        }
        if parser.truncation != nil || parser.pos >= bytes.count {
            return DICOMFile(preamble: preamble, meta: meta, dataSet: DataSet(bigEndian: syntax.isBigEndian, inherited: .default),
                             transferSyntaxUID: tsUID, transferSyntax: syntax, truncation: parser.truncation, stopped: false)
        }

        if syntax.isDeflated {
            let inflated = try Inflate.raw(Array(bytes[parser.pos...]), limit: options.maxInflatedBytes, offset: parser.pos)
            var inner = Parser(bytes: inflated, options: options)
            let explicit = inner.detectExplicit(default: true)
            let ds = try inner.parseTopLevel(explicit: explicit, bigEndian: false)
            return DICOMFile(preamble: preamble, meta: meta, dataSet: ds, transferSyntaxUID: tsUID, transferSyntax: syntax,
                             truncation: inner.truncation, stopped: inner.stoppedBeforePixels)
        }
        var explicit = syntax.isExplicitVR
        if !syntax.isBigEndian { explicit = parser.detectExplicit(default: explicit) }
        let dataStart = parser.pos
        let ds = try parser.parseTopLevel(explicit: explicit, bigEndian: syntax.isBigEndian)
        if meta.isEmpty, let t = parser.truncation, t.offset == dataStart {
            // No meta header and not even the first element fits: this is not DICOM data.
            throw DICOMError.malformed("no file meta header, and the data does not parse as a data set (\(t.message))", offset: dataStart)
        }
        return DICOMFile(preamble: preamble, meta: meta, dataSet: ds, transferSyntaxUID: tsUID, transferSyntax: syntax,
                         truncation: parser.truncation, stopped: parser.stoppedBeforePixels)
    }

    /// Convenience: header-only read.
    public static func readHeader(_ bytes: [UInt8]) throws -> DICOMFile {
        try read(bytes, options: .headerOnly)
    }
}

struct Parser {
    let bytes: [UInt8]
    let options: ReadOptions
    var pos = 0
    var truncation: DICOMError?
    var stoppedBeforePixels = false
    /// While > 0, truncation always throws (speculative parses of UN values).
    var strictNesting = 0

    static let undefined: UInt32 = 0xFFFF_FFFF

    init(bytes: [UInt8], options: ReadOptions) {
        self.bytes = bytes
        self.options = options
    }

    var remaining: Int { bytes.count - pos }

    // MARK: primitive reads (caller has checked bounds)

    @inline(__always) func u16(_ at: Int, _ be: Bool) -> UInt16 {
        be ? UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) : UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }
    @inline(__always) func u32(_ at: Int, _ be: Bool) -> UInt32 {
        be ? UInt32(u16(at, true)) << 16 | UInt32(u16(at + 2, true)) : UInt32(u16(at, false)) | UInt32(u16(at + 2, false)) << 16
    }

    func peekGroupLE() -> UInt16? {
        guard remaining >= 2 else { return nil }
        return u16(pos, false)
    }

    /// True when the bytes after the next tag spell a known VR.
    func looksExplicit(at: Int) -> Bool {
        guard at + 6 <= bytes.count else { return false }
        return VR(bytes: bytes[at + 4], bytes[at + 5]) != nil
    }

    /// Explicit or implicit VR for a little-endian data set, from its first element.
    func detectExplicit(default def: Bool) -> Bool {
        guard remaining >= 8 else { return def }
        let group = u16(pos, false)
        if group == 0xFFFE { return def }
        return looksExplicit(at: pos)
    }

    /// No meta header: guess from the first element (PS3.10 allows none of this, but
    /// pre-Part-10 files exist). Defaults to Implicit VR Little Endian.
    func guessSyntax() -> TransferSyntax {
        guard remaining >= 8 else { return .implicitVRLittleEndian }
        if looksExplicit(at: pos) {
            let le = u16(pos, false), be = u16(pos, true)
            return be < le ? .explicitVRBigEndian : .explicitVRLittleEndian
        }
        return .implicitVRLittleEndian
    }

    // MARK: truncation handling

    /// Records (lenient) or throws (strict) a truncation. Returns normally only when lenient.
    mutating func truncated(_ what: String, at offset: Int, tag: Tag?) throws {
        let err = DICOMError.truncated(what, offset: offset, tag: tag)
        if !options.allowTruncated || strictNesting > 0 { throw err }
        if truncation == nil { truncation = err }
        pos = bytes.count
    }

    // MARK: meta

    mutating func parseMeta() throws -> DataSet {
        var meta = DataSet()
        while remaining >= 2, u16(pos, false) == 0x0002 {
            let explicit = looksExplicit(at: pos)
            guard let e = try parseElement(explicit: explicit, bigEndian: false, depth: 0, charset: .default) else { break }
            meta.appendParsed(e)
            if truncation != nil { break }
        }
        return meta
    }

    // MARK: data sets

    mutating func parseTopLevel(explicit: Bool, bigEndian: Bool) throws -> DataSet {
        var ds = DataSet(bigEndian: bigEndian, inherited: .default)
        try parseDataSet(into: &ds, end: nil, explicit: explicit, bigEndian: bigEndian, depth: 0, inItem: false)
        return ds
    }

    /// Parses elements until `end` (defined length), an item delimiter (undefined-length
    /// item), or the end of input (top level).
    mutating func parseDataSet(into ds: inout DataSet, end: Int?, explicit: Bool, bigEndian: Bool, depth: Int, inItem: Bool) throws {
        let limit = end ?? bytes.count
        while pos < limit && truncation == nil {
            let start = pos
            if limit - pos < 8 {
                if end != nil {
                    throw DICOMError.malformed("\(limit - pos) stray bytes at the end of an item", offset: pos)
                }
                try truncated("input ends inside an element header", at: pos, tag: nil)
                return
            }
            let tag = Tag(u16(pos, bigEndian), u16(pos + 2, bigEndian))
            if tag.group == 0xFFFE {
                if tag == .itemDelimitationItem && inItem && end == nil {
                    pos += 8
                    return
                }
                throw DICOMError.malformed("unexpected \(tag == .item ? "item" : "delimiter") in a data set", offset: start, tag: tag)
            }
            if depth == 0 && options.stopBeforePixelData && tag >= .pixelData {
                stoppedBeforePixels = true
                pos = bytes.count
                return
            }
            if let last = ds.elements.last, last.tag == tag {
                throw DICOMError.malformed("repeated element", offset: start, tag: tag)
            }
            guard let e = try parseElement(explicit: explicit, bigEndian: bigEndian, depth: depth, charset: ds.characterSet, limit: limit) else { return }
            ds.appendParsed(e)
        }
        if inItem && end == nil && truncation == nil {
            try truncated("input ends before an item delimiter", at: pos, tag: nil)
        }
    }

    /// Reads one element at `pos`. `limit` is where the enclosing item ends.
    mutating func parseElement(explicit: Bool, bigEndian: Bool, depth: Int, charset: SpecificCharacterSet, limit: Int? = nil) throws -> DataElement? {
        let limit = limit ?? bytes.count
        let start = pos
        guard limit - pos >= 8 else {
            try truncated("input ends inside an element header", at: pos, tag: nil)
            return nil
        }
        let tag = Tag(u16(pos, bigEndian), u16(pos + 2, bigEndian))
        var vr: VR
        var length: UInt32
        if explicit {
            guard let v = VR(bytes: bytes[pos + 4], bytes[pos + 5]) else {
                throw DICOMError.malformed("invalid VR bytes 0x\(hex2(bytes[pos + 4]))\(hex2(bytes[pos + 5]))", offset: start, tag: tag)
            }
            vr = v
            if vr.hasLongLength {
                guard limit - pos >= 12 else {
                    try truncated("input ends inside an element header", at: pos, tag: tag)
                    return nil
                }
                length = u32(pos + 8, bigEndian)
                pos += 12
            } else {
                length = UInt32(u16(pos + 6, bigEndian))
                pos += 8
            }
        } else {
            length = u32(pos + 4, bigEndian)
            pos += 8
            vr = tag.isGroupLength ? .UL : DataDictionary.implicitVR(for: tag)
        }

        if length == Parser.undefined {
            if tag == .pixelData && (!explicit || vr == .OB || vr == .OW || vr == .UN) {
                let enc = try parseEncapsulated(tag: tag, start: start)
                return DataElement(tag: tag, vr: explicit ? vr : .OB, value: .encapsulated(enc), offset: start, hadUndefinedLength: true)
            }
            if vr == .SQ || vr == .UN || !explicit {
                // Undefined-length UN is a sequence encoded as Implicit VR Little Endian (PS3.5 6.2.2).
                let itemsExplicit = vr == .UN ? false : explicit
                let itemsBE = vr == .UN ? false : bigEndian
                let items = try parseItems(end: nil, explicit: itemsExplicit, bigEndian: itemsBE, depth: depth + 1, charset: charset, tag: tag)
                return DataElement(tag: tag, vr: .SQ, value: .sequence(items), offset: start, hadUndefinedLength: true)
            }
            throw DICOMError.malformed("undefined length on a \(vr.rawValue) element", offset: start, tag: tag)
        }

        let len = Int(length)
        if len > limit - pos {
            if limit < bytes.count {
                throw DICOMError.malformed("element length \(len) overruns its enclosing item (\(limit - pos) bytes left)", offset: start, tag: tag)
            }
            // Past the end of input: keep the short value in lenient mode (as pydicom does).
            let valueStart = pos
            if vr == .SQ && options.allowTruncated && strictNesting == 0 {
                let err = DICOMError.truncated("sequence claims \(len) bytes but only \(bytes.count - pos) remain", offset: start, tag: tag)
                let items = try parseItems(end: bytes.count, explicit: explicit, bigEndian: bigEndian, depth: depth + 1, charset: charset, tag: tag)
                if truncation == nil { truncation = err }
                pos = bytes.count
                return DataElement(tag: tag, vr: .SQ, value: .sequence(items), offset: start)
            }
            try truncated("element claims \(len) bytes but only \(bytes.count - pos) remain", at: start, tag: tag)
            if vr == .SQ { return DataElement(tag: tag, vr: vr, value: .sequence([]), offset: start) }
            return DataElement(tag: tag, vr: vr, value: .bytes(Array(bytes[valueStart...])), offset: start)
        }

        if vr == .SQ {
            let items = try parseItems(end: pos + len, explicit: explicit, bigEndian: bigEndian, depth: depth + 1, charset: charset, tag: tag)
            return DataElement(tag: tag, vr: .SQ, value: .sequence(items), offset: start)
        }
        if vr == .UN, len > 0, DataDictionary.entry(for: tag)?.vr == .SQ {
            // A sequence stored as UN: try to read its items as Implicit VR Little Endian.
            let save = pos
            strictNesting += 1
            let items = try? parseItems(end: pos + len, explicit: false, bigEndian: false, depth: depth + 1, charset: charset, tag: tag)
            strictNesting -= 1
            if let items {
                return DataElement(tag: tag, vr: .SQ, value: .sequence(items), offset: start)
            }
            pos = save
        }
        let value = Array(bytes[pos..<(pos + len)])
        pos += len
        return DataElement(tag: tag, vr: vr, value: .bytes(value), offset: start)
    }

    mutating func parseItems(end: Int?, explicit: Bool, bigEndian: Bool, depth: Int, charset: SpecificCharacterSet, tag seqTag: Tag) throws -> [DataSet] {
        if depth > options.maxDepth {
            throw DICOMError.limit("sequences nested deeper than \(options.maxDepth)", offset: pos, tag: seqTag)
        }
        var items: [DataSet] = []
        let limit = end ?? bytes.count
        while truncation == nil {
            if pos >= limit {
                if end == nil { try truncated("input ends before the sequence delimiter", at: pos, tag: seqTag) }
                break
            }
            let start = pos
            guard limit - pos >= 8 else {
                if end != nil { throw DICOMError.malformed("\(limit - pos) stray bytes at the end of a sequence", offset: pos, tag: seqTag) }
                try truncated("input ends inside an item header", at: pos, tag: seqTag)
                break
            }
            let tag = Tag(u16(pos, bigEndian), u16(pos + 2, bigEndian))
            let length = u32(pos + 4, bigEndian)
            pos += 8
            if tag == .sequenceDelimitationItem {
                if end == nil { break }
                continue  // tolerated inside a defined-length sequence
            }
            guard tag == .item else {
                throw DICOMError.malformed("expected an item tag in sequence, found \(tag)", offset: start, tag: seqTag)
            }
            var item = DataSet(bigEndian: bigEndian, inherited: charset)
            if length == Parser.undefined {
                try parseDataSet(into: &item, end: nil, explicit: explicit, bigEndian: bigEndian, depth: depth + 1, inItem: true)
            } else {
                let len = Int(length)
                if len > limit - pos {
                    if limit < bytes.count {
                        throw DICOMError.malformed("item length \(len) overruns its sequence", offset: start, tag: seqTag)
                    }
                    try truncated("item claims \(len) bytes but only \(bytes.count - pos) remain", at: start, tag: seqTag)
                    break
                }
                try parseDataSet(into: &item, end: pos + len, explicit: explicit, bigEndian: bigEndian, depth: depth + 1, inItem: true)
            }
            items.append(item)
        }
        return items
    }

    /// Encapsulated pixel data: items (Basic Offset Table first) until a sequence delimiter.
    mutating func parseEncapsulated(tag: Tag, start: Int) throws -> EncapsulatedPixelData {
        var bot: [UInt32] = []
        var fragments: [[UInt8]] = []
        var first = true
        while truncation == nil {
            let itemStart = pos
            guard remaining >= 8 else {
                try truncated("input ends before the end of encapsulated pixel data", at: pos, tag: tag)
                break
            }
            let itag = Tag(u16(pos, false), u16(pos + 2, false))
            let length = u32(pos + 4, false)
            pos += 8
            if itag == .sequenceDelimitationItem { break }
            guard itag == .item else {
                throw DICOMError.malformed("expected a fragment item, found \(itag)", offset: itemStart, tag: tag)
            }
            guard length != Parser.undefined else {
                throw DICOMError.malformed("fragment with undefined length", offset: itemStart, tag: tag)
            }
            var len = Int(length)
            if len > remaining {
                try truncated("fragment claims \(len) bytes but only \(remaining) remain", at: itemStart, tag: tag)
                len = 0
                pos = bytes.count
            }
            let data = Array(bytes[pos..<(pos + len)])
            pos += len
            if first {
                first = false
                if len % 4 != 0 {
                    throw DICOMError.malformed("basic offset table length \(len) is not a multiple of 4", offset: itemStart, tag: tag)
                }
                bot.reserveCapacity(len / 4)
                var i = 0
                while i < len {
                    bot.append(UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24)
                    i += 4
                }
            } else {
                fragments.append(data)
            }
        }
        return EncapsulatedPixelData(basicOffsetTable: bot, fragments: fragments)
    }
}

@inline(__always) func hex2(_ v: UInt8) -> String {
    let d: [Character] = Array("0123456789ABCDEF")
    return String([d[Int(v >> 4)], d[Int(v & 0xF)]])
}
