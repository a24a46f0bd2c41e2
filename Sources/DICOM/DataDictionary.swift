/// One data dictionary entry (from the generated table).
public struct DictionaryEntry: Sendable, Equatable {
    public let keyword: String
    /// The VR as the dictionary states it, e.g. "US", "xs" (US or SS), "ox" (OB or OW).
    public let vrCode: String
    public let vm: String
    public let isRetired: Bool

    /// A concrete VR for implicit-VR decoding.
    public var vr: VR {
        switch vrCode {
        case "xs": return .US
        case "ox", "lt", "px": return .OW
        case "up": return .UL
        case "na": return .UN
        default: return VR(rawValue: vrCode) ?? .UN
        }
    }
}

/// The DICOM data dictionary (tag → keyword, VR, VM), generated from dcmtk's dicom.dic.
public enum DataDictionary {
    struct RangeEntry: Sendable {
        let groupLo: UInt16, groupHi: UInt16, elementLo: UInt16, elementHi: UInt16
        let entry: DictionaryEntry
    }
    struct Tables: Sendable {
        var exact: [UInt32: DictionaryEntry] = [:]
        var ranges: [RangeEntry] = []
        var byKeyword: [String: Tag] = [:]
    }

    static let tables: Tables = {
        var t = Tables()
        t.exact.reserveCapacity(5000)
        for line in generatedTable.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 8,
                  let g0 = UInt16(f[0], radix: 16), let g1 = UInt16(f[1], radix: 16),
                  let e0 = UInt16(f[2], radix: 16), let e1 = UInt16(f[3], radix: 16) else { continue }
            let entry = DictionaryEntry(keyword: String(f[6]), vrCode: String(f[4]), vm: String(f[5]), isRetired: f[7] == "1")
            if g0 == g1 && e0 == e1 {
                let tag = Tag(g0, e0)
                t.exact[tag.rawValue] = entry
                if t.byKeyword[entry.keyword] == nil || !entry.isRetired { t.byKeyword[entry.keyword] = tag }
            } else {
                t.ranges.append(RangeEntry(groupLo: g0, groupHi: g1, elementLo: e0, elementHi: e1, entry: entry))
                if t.byKeyword[entry.keyword] == nil { t.byKeyword[entry.keyword] = Tag(g0, e0) }
            }
        }
        return t
    }()

    static let groupLength = DictionaryEntry(keyword: "GenericGroupLength", vrCode: "UL", vm: "1", isRetired: false)
    static let privateCreator = DictionaryEntry(keyword: "PrivateCreator", vrCode: "LO", vm: "1", isRetired: false)

    /// The entry for a tag; nil for private data elements and unknown tags.
    public static func entry(for tag: Tag) -> DictionaryEntry? {
        if let e = tables.exact[tag.rawValue] { return e }
        if tag.isPrivate {
            if tag.isPrivateCreator { return privateCreator }
            if tag.element == 0 { return groupLength }
            return nil
        }
        for r in tables.ranges where tag.group >= r.groupLo && tag.group <= r.groupHi
            && tag.element >= r.elementLo && tag.element <= r.elementHi {
            // Repeating groups (50xx, 60xx) use even groups only.
            if r.groupLo != r.groupHi && tag.group & 1 == 1 { continue }
            return r.entry
        }
        if tag.element == 0 { return groupLength }
        return nil
    }

    public static func tag(forKeyword keyword: String) -> Tag? { tables.byKeyword[keyword] }

    /// VR to use when the transfer syntax does not carry one.
    public static func implicitVR(for tag: Tag) -> VR { entry(for: tag)?.vr ?? .UN }
}
