/// A person name (PN) split into its component groups and components (PS3.5 6.2.1).
public struct PersonName: Sendable, Equatable, CustomStringConvertible {
    public var familyName: String
    public var givenName: String
    public var middleName: String
    public var namePrefix: String
    public var nameSuffix: String
    /// The component groups, "" when absent: alphabetic (single-byte), ideographic and
    /// phonetic representations, each with its components separated by "^".
    public var alphabetic: String
    public var ideographic: String
    public var phonetic: String
    public let raw: String

    public init(_ raw: String) {
        self.raw = raw
        let groups = raw.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
        alphabetic = groups.first ?? ""
        let c = alphabetic.split(separator: "^", omittingEmptySubsequences: false).map(String.init)
        func at(_ i: Int) -> String { i < c.count ? c[i] : "" }
        familyName = at(0); givenName = at(1); middleName = at(2); namePrefix = at(3); nameSuffix = at(4)
        ideographic = groups.count > 1 ? groups[1] : ""
        phonetic = groups.count > 2 ? groups[2] : ""
    }

    /// The component groups present, trailing empty ones dropped (pydicom's `components`).
    public var groups: [String] {
        var g = raw.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
        while let last = g.last, last.isEmpty { g.removeLast() }
        return g
    }

    /// The groups joined by "=" without trailing empty groups: pydicom's `str(PersonName)`.
    public var description: String { groups.joined(separator: "=") }
}

/// A DA value (PS3.5 6.2): YYYYMMDD, also the ACR-NEMA form YYYY.MM.DD.
public struct DICOMDate: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let year: Int, month: Int, day: Int

    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), (1...31).contains(day), (0...9999).contains(year) else { return nil }
        self.year = year; self.month = month; self.day = day
    }

    public init?(_ text: String) {
        let digits = text.filter { $0 != "." }
        guard digits.count == 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let y = Int(digits.prefix(4)), let m = Int(digits.dropFirst(4).prefix(2)), let d = Int(digits.suffix(2)) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public var description: String {
        func pad(_ v: Int, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }
        return pad(year, 4) + pad(month, 2) + pad(day, 2)
    }
}

extension DataSet {
    // MARK: Text

    /// Decodes a string VR's value: the text VRs with the data set's character set (PN
    /// without its trailing padding first, as pydicom does), all others (CS, UI, DA, …) with
    /// the default repertoire, read as Latin-1 like pydicom.
    func decodeText(_ bytes: [UInt8], vr: VR) -> String {
        switch vr {
        case .PN:
            var end = bytes.count
            while end > 0, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x00 { end -= 1 }
            return bytes.withUnsafeBufferPointer { characterSet.decode(UnsafeBufferPointer(rebasing: $0[0..<end])).text }
        case .SH, .LO, .ST, .LT, .UT, .UC:
            return characterSet.decode(bytes)
        default:
            return DataSet.latin1(bytes)
        }
    }

    static func latin1(_ bytes: [UInt8]) -> String {
        var ascii = true
        for b in bytes where b >= 0x80 { ascii = false; break }
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        var s = ""
        s.unicodeScalars.reserveCapacity(bytes.count)
        for b in bytes { s.unicodeScalars.append(Unicode.Scalar(b)) }
        return s
    }

    static func trim(_ s: Substring, leading: Bool) -> String {
        var sub = s
        while let l = sub.last, l == " " || l == "\0" { sub.removeLast() }
        if leading { while let f = sub.first, f == " " || f == "\0" { sub.removeFirst() } }
        return String(sub)
    }

    /// The element's value as one string, padding trimmed. Numeric binary VRs are rendered
    /// as their numbers joined by `\`. Nil when absent, a sequence, or a bulk binary VR.
    public func string(_ tag: Tag) -> String? {
        guard let e = self[tag], let b = e.bytes else { return nil }
        let vr = effectiveVR(e)
        if vr.isString {
            return DataSet.trim(Substring(decodeText(b, vr: vr)), leading: !vr.isText)
        }
        switch vr {
        case .US, .SS, .UL, .SL, .FL, .FD, .SV, .UV:
            return numbers(e).map(DataSet.format).joined(separator: "\\")
        case .AT:
            return tagValues(tag)?.map(\.description).joined(separator: "\\")
        default:
            return nil
        }
    }

    /// All values of a multi-valued element (split on `\`), each trimmed.
    public func strings(_ tag: Tag) -> [String]? {
        guard let e = self[tag], let b = e.bytes else { return nil }
        let vr = effectiveVR(e)
        if vr.isString {
            let text = decodeText(b, vr: vr)
            if vr.isText {
                let value = DataSet.trim(Substring(text), leading: false)
                return value.isEmpty ? [] : [value]  // empty like the other VRs
            }
            if text.isEmpty { return [] }
            let whole = DataSet.trim(Substring(text), leading: false)
            if whole.isEmpty { return [] }
            return whole.split(separator: "\\", omittingEmptySubsequences: false).map { DataSet.trim($0, leading: true) }
        }
        guard let s = string(tag) else { return nil }
        return s.isEmpty ? [] : s.split(separator: "\\").map(String.init)
    }

    public func string(_ keyword: String) -> String? { Tag(keyword: keyword).flatMap { string($0) } }

    /// A UID value with NUL/space padding removed.
    public func uid(_ tag: Tag) -> String? { string(tag) }

    public func personName(_ tag: Tag) -> PersonName? { string(tag).map(PersonName.init) }
    public func personNames(_ tag: Tag) -> [PersonName]? { strings(tag)?.map(PersonName.init) }

    public func date(_ tag: Tag) -> DICOMDate? { string(tag).flatMap(DICOMDate.init) }

    // MARK: Numbers

    /// All numeric values: binary VRs in the data set's byte order, DS/IS parsed.
    /// Unparseable DS/IS components are skipped.
    public func doubles(_ tag: Tag) -> [Double]? {
        guard let e = self[tag], e.bytes != nil else { return nil }
        let vr = effectiveVR(e)
        if vr == .DS || vr == .IS {
            return strings(tag)?.compactMap { Double($0) }
        }
        switch vr {
        case .US, .SS, .UL, .SL, .FL, .FD, .SV, .UV, .OW, .OB, .OF, .OD, .OL, .OV: return numbers(e)
        default: return nil
        }
    }

    public func double(_ tag: Tag) -> Double? { doubles(tag)?.first }

    /// Integer values; DS values are accepted when integral.
    public func ints(_ tag: Tag) -> [Int]? {
        guard let e = self[tag], e.bytes != nil else { return nil }
        let vr = effectiveVR(e)
        if vr == .IS || vr == .DS {
            return strings(tag)?.compactMap { s -> Int? in
                if let i = Int(s) { return i }
                if let d = Double(s), d.rounded() == d, abs(d) < 9.0e18 { return Int(d) }
                return nil
            }
        }
        switch vr {
        case .US, .SS, .UL, .SL, .SV, .UV:
            return integers(e)
        default:
            return doubles(tag)?.compactMap { d in d.rounded() == d && abs(d) < 9.0e18 ? Int(d) : nil }
        }
    }

    public func int(_ tag: Tag) -> Int? { ints(tag)?.first }

    public func double(_ keyword: String) -> Double? { Tag(keyword: keyword).flatMap { double($0) } }
    public func int(_ keyword: String) -> Int? { Tag(keyword: keyword).flatMap { int($0) } }

    /// AT values.
    public func tagValues(_ tag: Tag) -> [Tag]? {
        guard let e = self[tag], let b = e.bytes, effectiveVR(e) == .AT else { return nil }
        var out: [Tag] = []
        var i = 0
        while i + 4 <= b.count {
            out.append(Tag(u16(b, i), u16(b, i + 2)))
            i += 4
        }
        return out
    }

    /// The items of a sequence; an item without its own (0008,0005) decodes text with this
    /// data set's character set (also for items built in code).
    public func sequence(_ tag: Tag) -> [DataSet]? {
        self[tag]?.items.map { items in items.map { $0.inheriting(characterSet) } }
    }

    // MARK: helpers

    /// UN elements whose tag the dictionary knows are interpreted with the dictionary VR
    /// (as pydicom and dcmtk do).
    func effectiveVR(_ e: DataElement) -> VR {
        if e.vr == .UN, let d = DataDictionary.entry(for: e.tag) {
            let vr = d.vr
            return vr == .UN ? .UN : vr
        }
        return e.vr
    }

    @inline(__always) func u16(_ b: [UInt8], _ i: Int) -> UInt16 {
        isBigEndian ? UInt16(b[i]) << 8 | UInt16(b[i + 1]) : UInt16(b[i]) | UInt16(b[i + 1]) << 8
    }
    @inline(__always) func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        isBigEndian ? UInt32(u16(b, i)) << 16 | UInt32(u16(b, i + 2)) : UInt32(u16(b, i)) | UInt32(u16(b, i + 2)) << 16
    }
    @inline(__always) func u64(_ b: [UInt8], _ i: Int) -> UInt64 {
        isBigEndian ? UInt64(u32(b, i)) << 32 | UInt64(u32(b, i + 4)) : UInt64(u32(b, i)) | UInt64(u32(b, i + 4)) << 32
    }

    func integers(_ e: DataElement) -> [Int] {
        guard let b = e.bytes else { return [] }
        let vr = effectiveVR(e)
        var out: [Int] = []
        switch vr {
        case .US: var i = 0; while i + 2 <= b.count { out.append(Int(u16(b, i))); i += 2 }
        case .SS: var i = 0; while i + 2 <= b.count { out.append(Int(Int16(bitPattern: u16(b, i)))); i += 2 }
        case .UL: var i = 0; while i + 4 <= b.count { out.append(Int(u32(b, i))); i += 4 }
        case .SL: var i = 0; while i + 4 <= b.count { out.append(Int(Int32(bitPattern: u32(b, i)))); i += 4 }
        case .SV: var i = 0; while i + 8 <= b.count { out.append(Int(Int64(bitPattern: u64(b, i)))); i += 8 }
        case .UV: var i = 0; while i + 8 <= b.count { let v = u64(b, i); out.append(v > UInt64(Int.max) ? Int.max : Int(v)); i += 8 }
        default: break
        }
        return out
    }

    func numbers(_ e: DataElement) -> [Double] {
        guard let b = e.bytes else { return [] }
        switch effectiveVR(e) {
        case .US, .SS, .UL, .SL, .SV: return integers(e).map(Double.init)
        case .UV: var out: [Double] = []; var i = 0; while i + 8 <= b.count { out.append(Double(u64(b, i))); i += 8 }; return out
        case .OB: return b.map(Double.init)
        case .OW: var out: [Double] = []; var i = 0; while i + 2 <= b.count { out.append(Double(u16(b, i))); i += 2 }; return out
        case .OL: var out: [Double] = []; var i = 0; while i + 4 <= b.count { out.append(Double(u32(b, i))); i += 4 }; return out
        case .FL, .OF: var out: [Double] = []; var i = 0; while i + 4 <= b.count { out.append(Double(Float(bitPattern: u32(b, i)))); i += 4 }; return out
        case .FD, .OD: var out: [Double] = []; var i = 0; while i + 8 <= b.count { out.append(Double(bitPattern: u64(b, i))); i += 8 }; return out
        case .OV: var out: [Double] = []; var i = 0; while i + 8 <= b.count { out.append(Double(u64(b, i))); i += 8 }; return out
        default: return []
        }
    }

    static func format(_ d: Double) -> String {
        if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }
}
