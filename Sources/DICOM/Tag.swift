/// A DICOM attribute tag: (group, element).
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let group: UInt16
    public let element: UInt16

    public init(_ group: UInt16, _ element: UInt16) {
        self.group = group
        self.element = element
    }

    /// The tag packed as `group << 16 | element`.
    public init(rawValue: UInt32) {
        self.group = UInt16(truncatingIfNeeded: rawValue >> 16)
        self.element = UInt16(truncatingIfNeeded: rawValue)
    }

    /// Looks a keyword up in the data dictionary (`Tag(keyword: "Rows")`).
    public init?(keyword: String) {
        guard let tag = DataDictionary.tag(forKeyword: keyword) else { return nil }
        self = tag
    }

    public var rawValue: UInt32 { UInt32(group) << 16 | UInt32(element) }
    public var isPrivate: Bool { group & 1 == 1 }
    /// (gggg,0010-00FF) in an odd group: reserves a block of private elements.
    public var isPrivateCreator: Bool { isPrivate && element >= 0x10 && element <= 0xFF }
    public var isGroupLength: Bool { element == 0 }
    /// The dictionary keyword, or nil for private and unknown tags.
    public var keyword: String? { DataDictionary.entry(for: self)?.keyword }

    public static func < (a: Tag, b: Tag) -> Bool { a.rawValue < b.rawValue }

    public var description: String { "(\(hex4(group)),\(hex4(element)))" }
}

@inline(__always)
func hex4(_ v: UInt16) -> String {
    let digits: [Character] = Array("0123456789ABCDEF")
    var s = ""
    s.reserveCapacity(4)
    for shift in stride(from: 12, through: 0, by: -4) { s.append(digits[Int((v >> UInt16(shift)) & 0xF)]) }
    return s
}

extension Tag {
    // File meta information
    public static let fileMetaInformationGroupLength = Tag(0x0002, 0x0000)
    public static let fileMetaInformationVersion = Tag(0x0002, 0x0001)
    public static let mediaStorageSOPClassUID = Tag(0x0002, 0x0002)
    public static let mediaStorageSOPInstanceUID = Tag(0x0002, 0x0003)
    public static let transferSyntaxUID = Tag(0x0002, 0x0010)
    public static let implementationClassUID = Tag(0x0002, 0x0012)
    public static let implementationVersionName = Tag(0x0002, 0x0013)

    // Identification
    public static let specificCharacterSet = Tag(0x0008, 0x0005)
    public static let imageType = Tag(0x0008, 0x0008)
    public static let sopClassUID = Tag(0x0008, 0x0016)
    public static let sopInstanceUID = Tag(0x0008, 0x0018)
    public static let studyDate = Tag(0x0008, 0x0020)
    public static let seriesDate = Tag(0x0008, 0x0021)
    public static let studyTime = Tag(0x0008, 0x0030)
    public static let accessionNumber = Tag(0x0008, 0x0050)
    public static let modality = Tag(0x0008, 0x0060)
    public static let manufacturer = Tag(0x0008, 0x0070)
    public static let studyDescription = Tag(0x0008, 0x1030)
    public static let seriesDescription = Tag(0x0008, 0x103E)
    public static let patientName = Tag(0x0010, 0x0010)
    public static let patientID = Tag(0x0010, 0x0020)
    public static let patientBirthDate = Tag(0x0010, 0x0030)
    public static let patientSex = Tag(0x0010, 0x0040)
    public static let bodyPartExamined = Tag(0x0018, 0x0015)
    public static let sliceThickness = Tag(0x0018, 0x0050)
    public static let studyInstanceUID = Tag(0x0020, 0x000D)
    public static let seriesInstanceUID = Tag(0x0020, 0x000E)
    public static let studyID = Tag(0x0020, 0x0010)
    public static let seriesNumber = Tag(0x0020, 0x0011)
    public static let instanceNumber = Tag(0x0020, 0x0013)
    public static let imagePositionPatient = Tag(0x0020, 0x0032)
    public static let imageOrientationPatient = Tag(0x0020, 0x0037)
    public static let frameOfReferenceUID = Tag(0x0020, 0x0052)
    public static let sliceLocation = Tag(0x0020, 0x1041)

    // Image pixel module
    public static let samplesPerPixel = Tag(0x0028, 0x0002)
    public static let photometricInterpretation = Tag(0x0028, 0x0004)
    public static let planarConfiguration = Tag(0x0028, 0x0006)
    public static let numberOfFrames = Tag(0x0028, 0x0008)
    public static let rows = Tag(0x0028, 0x0010)
    public static let columns = Tag(0x0028, 0x0011)
    public static let pixelSpacing = Tag(0x0028, 0x0030)
    public static let bitsAllocated = Tag(0x0028, 0x0100)
    public static let bitsStored = Tag(0x0028, 0x0101)
    public static let highBit = Tag(0x0028, 0x0102)
    public static let pixelRepresentation = Tag(0x0028, 0x0103)
    public static let windowCenter = Tag(0x0028, 0x1050)
    public static let windowWidth = Tag(0x0028, 0x1051)
    public static let rescaleIntercept = Tag(0x0028, 0x1052)
    public static let rescaleSlope = Tag(0x0028, 0x1053)
    public static let rescaleType = Tag(0x0028, 0x1054)
    public static let extendedOffsetTable = Tag(0x7FE0, 0x0001)
    public static let extendedOffsetTableLengths = Tag(0x7FE0, 0x0002)
    public static let pixelData = Tag(0x7FE0, 0x0010)

    // Items and delimiters
    public static let item = Tag(0xFFFE, 0xE000)
    public static let itemDelimitationItem = Tag(0xFFFE, 0xE00D)
    public static let sequenceDelimitationItem = Tag(0xFFFE, 0xE0DD)
}
