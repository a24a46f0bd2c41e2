/// Encapsulated (compressed) pixel data: Basic Offset Table plus fragments (PS3.5 A.4).
public struct EncapsulatedPixelData: Sendable, Equatable {
    public var basicOffsetTable: [UInt32]
    public var fragments: [[UInt8]]

    public init(basicOffsetTable: [UInt32] = [], fragments: [[UInt8]]) {
        self.basicOffsetTable = basicOffsetTable
        self.fragments = fragments
    }
}

public enum ElementValue: Sendable, Equatable {
    /// Raw value bytes in the data set's byte order.
    case bytes([UInt8])
    case sequence([DataSet])
    case encapsulated(EncapsulatedPixelData)
}

public struct DataElement: Sendable, Equatable {
    public let tag: Tag
    public let vr: VR
    public var value: ElementValue
    /// Byte offset of the element's tag in the (inflated) input; -1 for elements built in code.
    public let offset: Int
    /// The element was encoded with undefined length (0xFFFFFFFF).
    public let hadUndefinedLength: Bool

    public init(tag: Tag, vr: VR, value: ElementValue, offset: Int = -1, hadUndefinedLength: Bool = false) {
        self.tag = tag
        self.vr = vr
        self.value = value
        self.offset = offset
        self.hadUndefinedLength = hadUndefinedLength
    }

    public var keyword: String? { tag.keyword }

    /// Raw bytes of a primitive value (nil for sequences and encapsulated pixel data).
    public var bytes: [UInt8]? {
        if case .bytes(let b) = value { return b }
        return nil
    }
    public var items: [DataSet]? {
        if case .sequence(let s) = value { return s }
        return nil
    }
    public var encapsulated: EncapsulatedPixelData? {
        if case .encapsulated(let e) = value { return e }
        return nil
    }
}

/// An ordered collection of data elements: the top-level data set, the file meta group or a
/// sequence item. A value type; the `set…` methods build data sets for `DICOMWriter`.
public struct DataSet: Sendable, Equatable {
    public private(set) var elements: [DataElement] = []
    private var index: [Tag: Int] = [:]
    /// Numbers in `.bytes` values are big endian (Explicit VR Big Endian files).
    public internal(set) var isBigEndian: Bool = false
    /// How text values (SH, LO, ST, LT, UT, PN, UC) are decoded: this data set's own
    /// Specific Character Set (0008,0005), or for a sequence item without one its parent's
    /// (PS3.5 7.5.3).
    public private(set) var characterSet: SpecificCharacterSet = .default
    /// What a sequence item inherits (the default repertoire at the top level).
    public internal(set) var inheritedCharacterSet: SpecificCharacterSet = .default

    /// Value 1 of the character set in effect is ISO_IR 192 (UTF-8).
    public var isUTF8: Bool { characterSet.isUTF8 }

    public init() {}

    init(bigEndian: Bool, inherited: SpecificCharacterSet) {
        self.isBigEndian = bigEndian
        self.characterSet = inherited
        self.inheritedCharacterSet = inherited
    }

    init(bigEndian: Bool, utf8: Bool) {
        self.init(bigEndian: bigEndian, inherited: utf8 ? .utf8 : .default)
    }

    public var count: Int { elements.count }
    public var isEmpty: Bool { elements.isEmpty }
    public var tags: [Tag] { elements.map(\.tag) }

    public subscript(tag: Tag) -> DataElement? {
        guard let i = index[tag] else { return nil }
        return elements[i]
    }

    /// Lookup by dictionary keyword: `dataSet["Rows"]`.
    public subscript(keyword: String) -> DataElement? {
        guard let tag = Tag(keyword: keyword) else { return nil }
        return self[tag]
    }

    public func contains(_ tag: Tag) -> Bool { index[tag] != nil }

    /// Insert or replace; keeps elements in ascending tag order when appended in order,
    /// otherwise inserts at the sorted position.
    public mutating func insert(_ element: DataElement) {
        if let i = index[element.tag] {
            elements[i] = element
            return
        }
        if let last = elements.last, last.tag > element.tag {
            var lo = 0, hi = elements.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if elements[mid].tag < element.tag { lo = mid + 1 } else { hi = mid }
            }
            elements.insert(element, at: lo)
            for j in lo..<elements.count { index[elements[j].tag] = j }
        } else {
            index[element.tag] = elements.count
            elements.append(element)
        }
        if element.tag == .specificCharacterSet { refreshCharset() }
    }

    /// Appends in file order without re-sorting (parser use; duplicates keep the first).
    mutating func appendParsed(_ element: DataElement) {
        if index[element.tag] != nil { return }
        index[element.tag] = elements.count
        elements.append(element)
        if element.tag == .specificCharacterSet { refreshCharset() }
    }

    @discardableResult
    public mutating func remove(_ tag: Tag) -> DataElement? {
        guard let i = index[tag] else { return nil }
        let e = elements.remove(at: i)
        index[tag] = nil
        for j in i..<elements.count { index[elements[j].tag] = j }
        if tag == .specificCharacterSet { characterSet = inheritedCharacterSet }
        return e
    }

    /// A data set with its own (0008,0005) uses it, even when empty (then the default
    /// repertoire), as pydicom does.
    private mutating func refreshCharset() {
        guard let e = self[.specificCharacterSet] else { return }
        characterSet = SpecificCharacterSet(elementValue: e.bytes ?? [])
    }

    /// This data set as an item of a data set whose character set is `parent`.
    func inheriting(_ parent: SpecificCharacterSet) -> DataSet {
        if inheritedCharacterSet == parent { return self }
        var item = self
        item.inheritedCharacterSet = parent
        if !item.contains(.specificCharacterSet) { item.characterSet = parent }
        return item
    }

    public static func == (a: DataSet, b: DataSet) -> Bool {
        a.elements == b.elements && a.isBigEndian == b.isBigEndian
    }
}
