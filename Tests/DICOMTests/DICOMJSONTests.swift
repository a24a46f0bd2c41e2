import DICOM
import Foundation
import Testing

typealias Tag = DICOM.Tag

/// The DICOM JSON model (PS3.18 F.2) as QIDO-RS and WADO-RS metadata return it; the
/// dicomweb-client end-to-end test reads it with pydicom, these pin the rules one by one.
@Suite struct DICOMJSONTests {
    func encoded(_ build: (inout DataSet) throws -> Void, include: Set<Tag>? = nil, bulk: ((Tag) -> String?)? = nil) throws -> [String: JSONValue] {
        var ds = DataSet()
        try build(&ds)
        let file = try DICOMFile.read(DICOMWriter.write(ds))
        guard case .object(let object) = DICOMJSON.encode(file.dataSet, include: include, bulkDataURI: bulk) else { Issue.record("not an object"); return [:] }
        return object
    }

    @Test func valuesAreTypedByTheirVR() throws {
        let object = try encoded { ds in
            ds.set(Tag(0x0008, 0x0005), "ISO_IR 192", vr: .CS)
            ds.set(.patientName, "张^三=Zhang^San", vr: .PN)
            ds.set(Tag(0x0010, 0x0020), "P-1", vr: .LO)
            ds.set(.modality, "CT", vr: .CS)
            try ds.set(.instanceNumber, int: 7)
            try ds.set(.windowCenter, doubles: [40, -600.5])
            try ds.set(.rows, int: 512)
            ds.set(Tag(0x0008, 0x0061), strings: ["CT", "SR"], vr: .CS)
            ds.set(Tag(0x0010, 0x0030), "", vr: .DA)
        }
        #expect(object["00100010"] == .object(["vr": .string("PN"), "Value": .array([.object(["Alphabetic": .string("张^三"), "Ideographic": .string("Zhang^San")])])]))
        #expect(object["00100020"] == .object(["vr": .string("LO"), "Value": .array([.string("P-1")])]))
        #expect(object["00200013"] == .object(["vr": .string("IS"), "Value": .array([.int(7)])]))
        #expect(object["00281050"] == .object(["vr": .string("DS"), "Value": .array([.double(40), .double(-600.5)])]))
        #expect(object["00280010"] == .object(["vr": .string("US"), "Value": .array([.int(512)])]))
        #expect(object["00080061"] == .object(["vr": .string("CS"), "Value": .array([.string("CT"), .string("SR")])]))
        #expect(object["00100030"] == .object(["vr": .string("DA")]), "an empty value has no Value")
        #expect(object["00020010"] == nil, "file meta is not part of the data set")
    }

    @Test func sequencesNestAndBulkDataIsNamedOrLeftOut() throws {
        let build: (inout DataSet) throws -> Void = { ds in
            var item = DataSet()
            item.set(Tag(0x0008, 0x0100), "121071", vr: .SH)
            ds.set(Tag(0x0040, 0xA043), sequence: [item])
            try ds.setPixelData(.uint16([1, 2, 3, 4]), rows: 2, columns: 2)
        }
        let plain = try encoded(build)
        #expect(plain["7FE00010"] == nil, "pixel data without a URI is left out")
        #expect(plain["0040A043"] == .object(["vr": .string("SQ"), "Value": .array([.object(["00080100": .object(["vr": .string("SH"), "Value": .array([.string("121071")])])])])]))
        let named = try encoded(build, bulk: { $0 == .pixelData ? "http://x/frames/1" : nil })
        #expect(named["7FE00010"] == .object(["vr": .string("OW"), "BulkDataURI": .string("http://x/frames/1")]))
        let only = try encoded(build, include: [.rows])
        #expect(Set(only.keys) == ["00280010"])
        #expect(DICOMJSON.hexKey(Tag(0x0020, 0x000D)) == "0020000D")
    }

    /// WADO-RS frames are packed one at a time: each equals its slice of the whole array.
    @Test func oneFrameIsItsSliceOfTheWholeArray() throws {
        var ds = DataSet()
        try ds.setPixelData(.int16([1, -2, 300, -400, 5, 6, 7, -32768]), rows: 2, columns: 1, frames: 4)
        let image = try DICOMFile.read(DICOMWriter.write(ds)).decodePixels()
        let whole = image.littleEndianBytes()
        for frame in 0..<4 { #expect(image.littleEndianBytes(frame: frame) == Array(whole[(frame * 4)..<(frame * 4 + 4)])) }
        #expect(image.littleEndianBytes(frame: 3) == [0x07, 0x00, 0x00, 0x80])
    }
}
