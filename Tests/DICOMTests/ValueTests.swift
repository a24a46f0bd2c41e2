import Crypto
import Foundation
import Testing
@testable import DICOM

@Suite("Values and dictionary")
struct ValueTests {
    @Test("dictionary: keywords, VRs, repeating groups, private tags")
    func dictionary() {
        #expect(Tag(keyword: "Rows") == .rows)
        #expect(Tag(keyword: "StudyInstanceUID") == .studyInstanceUID)
        #expect(Tag.pixelData.keyword == "PixelData")
        #expect(DataDictionary.entry(for: .rows)?.vr == .US)
        #expect(DataDictionary.entry(for: .windowCenter)?.vm == "1-n")
        #expect(DataDictionary.entry(for: Tag(0x6002, 0x3000))?.keyword == "OverlayData")
        #expect(DataDictionary.entry(for: Tag(0x0029, 0x0010))?.vr == .LO)
        #expect(DataDictionary.entry(for: Tag(0x0029, 0x1010)) == nil)
        #expect(DataDictionary.implicitVR(for: Tag(0x0028, 0x0106)) == .US)  // "US or SS"
        #expect(Tag(keyword: "NotAKeyword") == nil)
        #expect(Tag(0x7FE0, 0x0010).description == "(7FE0,0010)")
    }

    @Test("strings: padding, multi-values, person names, dates, UTF-8 character set")
    func strings() throws {
        var ds = DataSet()
        ds.set(.patientName, "Müller^Hans^^Dr=ミュラー^ハンス")
        ds.set(.imageType, strings: ["DERIVED", "SECONDARY"])
        ds.set(.studyDate, "20231105")
        ds.set(.sopInstanceUID, vr: .UI, bytes: Array("1.2.3".utf8) + [0])
        ds.set(Tag(0x0008, 0x0070), vr: .LO, bytes: Array("  ACME ".utf8) + [0x20])
        ds.set(.specificCharacterSet, "ISO_IR 192")
        #expect(ds.isUTF8)
        let pn = try #require(ds.personName(.patientName))
        #expect(pn.familyName == "Müller" && pn.givenName == "Hans" && pn.middleName == "" && pn.namePrefix == "Dr")
        #expect(pn.ideographic == "ミュラー^ハンス")
        #expect(ds.strings(.imageType) == ["DERIVED", "SECONDARY"])
        #expect(ds.string(.imageType) == "DERIVED\\SECONDARY")
        #expect(ds.date(.studyDate) == DICOMDate(year: 2023, month: 11, day: 5))
        #expect(DICOMDate("2023.11.05") == DICOMDate(year: 2023, month: 11, day: 5))
        #expect(DICOMDate("20231305") == nil)
        #expect(ds.uid(.sopInstanceUID) == "1.2.3")
        #expect(ds.string(Tag(0x0008, 0x0070)) == "ACME")
        // Latin-1 by default.
        var latin = DataSet()
        latin.set(.patientName, vr: .PN, bytes: [0x4D, 0xFC, 0x6C, 0x6C, 0x65, 0x72])
        #expect(latin.string(.patientName) == "Müller")
    }

    @Test("numbers: binary in both byte orders, DS/IS parsing, AT")
    func numbers() throws {
        var le = DataSet()
        le.set(.rows, vr: .US, bytes: [0x00, 0x02])
        le.set(.windowCenter, vr: .DS, bytes: Array("40\\-1.5e2 ".utf8))
        le.set(.instanceNumber, vr: .IS, bytes: Array(" 12 ".utf8))
        le.set(Tag(0x0018, 0x1310), vr: .US, bytes: [1, 0, 2, 0, 3, 0, 4, 0])
        le.set(Tag(0x0020, 0x9165), vr: .AT, bytes: [0x28, 0x00, 0x10, 0x00])
        le.set(Tag(0x0018, 0x9087), vr: .FD, bytes: Array(withUnsafeBytes(of: 2.5.bitPattern.littleEndian, Array.init)))
        le.set(Tag(0x0028, 0x0106), vr: .SS, bytes: [0xFF, 0xFF])
        #expect(le.int(.rows) == 512)
        #expect(le.doubles(.windowCenter) == [40, -150])
        #expect(le.int(.instanceNumber) == 12)
        #expect(le.ints(Tag(0x0018, 0x1310)) == [1, 2, 3, 4])
        #expect(le.tagValues(Tag(0x0020, 0x9165)) == [.rows])
        #expect(le.double(Tag(0x0018, 0x9087)) == 2.5)
        #expect(le.int(Tag(0x0028, 0x0106)) == -1)
        #expect(le.int("Rows") == 512)
        var be = DataSet(bigEndian: true, utf8: false)
        be.set(.rows, vr: .US, bytes: [0x00, 0x02])
        #expect(be.int(.rows) == 2)
        try be.set(.columns, int: 300)
        #expect(be[.columns]?.bytes == [0x01, 0x2C])
    }

    @Test("inspect JSON for a writer-made file uses expected.json's field names")
    func inspectJSON() throws {
        let bytes = try DICOMWriter.write(try Synthetic.ctSlice())
        let (report, ok) = InspectReport.json(for: bytes, digest: sha256Hex)
        #expect(ok)
        #expect(report["transfer_syntax"] == .string("1.2.840.10008.1.2.1"))
        #expect(report["Rows"] == .int(4))
        #expect(report["RescaleIntercept"] == .double(-1024))
        #expect(report["Modality"] == .string("CT"))
        #expect(report["top_level_elements"] == .int(try DICOMFile.read(bytes).dataSet.count))
        #expect(report["pixel"]?["dtype"] == .string("int16"))
        #expect(report["pixel"]?["shape"] == .array([.int(4), .int(3)]))
        #expect(report["pixel"]?["min"] == .double(-500))
        #expect(report.serialized().contains("\"RescaleIntercept\":-1024.0"))
        let (bad, readable) = InspectReport.json(for: [0x44, 0x49, 0x43, 0x4D, 0x02, 0x00], digest: sha256Hex)
        #expect(!readable)
        #expect(bad["error"]?["code"] == .string(DICOMError.truncatedCode))
        let (text, textOK) = InspectReport.text(for: bytes, digest: sha256Hex)
        #expect(textOK && text.contains("Explicit VR Little Endian") && text.contains("Top-level elements: "))
    }
}

/// The corpus hashes pixels with SHA-256 (swift-crypto here; the reader takes the digest as a parameter).
func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}
