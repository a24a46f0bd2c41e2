import DICOM

/// Data sets and raw byte streams built in code, so the suite has coverage without the corpus.
enum Synthetic {
    /// A 16-bit signed CT slice with the usual header attributes.
    static func ctSlice(rows: Int = 4, columns: Int = 3) throws -> DataSet {
        var ds = DataSet()
        ds.set(.specificCharacterSet, "ISO_IR 100")
        ds.set(.imageType, strings: ["ORIGINAL", "PRIMARY", "AXIAL"])
        ds.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.2")
        ds.set(.sopInstanceUID, "2.25.1234.1")
        ds.set(.studyDate, "20240131")
        ds.set(.modality, "CT")
        ds.set(.patientName, "Doe^Jane^Q^Dr^PhD")
        ds.set(.patientID, "PID-0001")
        ds.set(.bodyPartExamined, "CHEST")
        try ds.set(.sliceThickness, double: 1.25)
        ds.set(.studyInstanceUID, "2.25.1234")
        ds.set(.seriesInstanceUID, "2.25.1234.0")
        try ds.set(.instanceNumber, int: 7)
        try ds.set(.imagePositionPatient, doubles: [-125.5, -130, 42.75])
        try ds.set(.imageOrientationPatient, doubles: [1, 0, 0, 0, 1, 0])
        try ds.set(.pixelSpacing, doubles: [0.703125, 0.703125])
        try ds.set(.windowCenter, doubles: [40, 400])
        try ds.set(.windowWidth, doubles: [400, 2000])
        try ds.set(.rescaleIntercept, double: -1024)
        try ds.set(.rescaleSlope, double: 1)
        var item = DataSet()
        item.set(Tag(0x0008, 0x1150), "1.2.840.10008.5.1.4.1.1.2")
        item.set(Tag(0x0008, 0x1155), "2.25.99")
        ds.set(Tag(0x0008, 0x1140), sequence: [item, item])
        ds.set(Tag(0x0009, 0x0010), "RADGRID TEST")
        ds.set(Tag(0x0009, 0x1001), vr: .UN, bytes: [1, 2, 3, 4])
        let values = (0..<(rows * columns)).map { Int16($0 * 97 - 500) }
        try ds.setPixelData(.int16(values), rows: rows, columns: columns)
        return ds
    }

    // MARK: raw element encoders

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(8 * $0)) } }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    static func implicitLE(_ g: UInt16, _ e: UInt16, _ value: [UInt8]) -> [UInt8] {
        le16(g) + le16(e) + le32(UInt32(value.count)) + value
    }
    static func explicitLE(_ g: UInt16, _ e: UInt16, _ vr: String, _ value: [UInt8]) -> [UInt8] {
        le16(g) + le16(e) + Array(vr.utf8) + le16(UInt16(value.count)) + value
    }
    static func explicitBE(_ g: UInt16, _ e: UInt16, _ vr: String, _ value: [UInt8]) -> [UInt8] {
        be16(g) + be16(e) + Array(vr.utf8) + be16(UInt16(value.count)) + value
    }
    static func text(_ s: String) -> [UInt8] {
        var b = Array(s.utf8)
        if b.count % 2 == 1 { b.append(0x20) }
        return b
    }

    /// Part 10 file with the given transfer syntax and raw data set bytes.
    static func part10(syntax: String, body: [UInt8]) -> [UInt8] {
        var uid = Array(syntax.utf8)
        if uid.count % 2 == 1 { uid.append(0) }
        let ts = explicitLE(0x0002, 0x0010, "UI", uid)
        let meta = explicitLE(0x0002, 0x0000, "UL", le32(UInt32(ts.count))) + ts
        return [UInt8](repeating: 0, count: 128) + Array("DICM".utf8) + meta + body
    }
}
