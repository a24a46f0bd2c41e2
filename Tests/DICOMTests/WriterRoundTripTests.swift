import Testing
@testable import DICOM

@Suite("Writer round trip")
struct WriterRoundTripTests {
    @Test("CT slice: write then read gives the same values and pixels")
    func ctRoundTrip() throws {
        let ds = try Synthetic.ctSlice()
        let bytes = try DICOMWriter.write(ds)
        #expect(Array(bytes[128..<132]) == Array("DICM".utf8))
        let file = try DICOMFile.read(bytes)
        #expect(file.transferSyntaxUID == "1.2.840.10008.1.2.1")
        #expect(file.meta.string(.mediaStorageSOPInstanceUID) == "2.25.1234.1")
        #expect(file.meta.string(.implementationClassUID) == DICOMWriter.implementationClassUID)
        let r = file.dataSet
        #expect(r.count == ds.count)
        #expect(r.tags == ds.tags)
        #expect(r.string(.modality) == "CT")
        #expect(r.string(.studyInstanceUID) == "2.25.1234")
        #expect(r.strings(.imageType) == ["ORIGINAL", "PRIMARY", "AXIAL"])
        #expect(r.int(.instanceNumber) == 7)
        #expect(r.double(.sliceThickness) == 1.25)
        #expect(r.doubles(.imagePositionPatient) == [-125.5, -130, 42.75])
        #expect(r.doubles(.windowWidth) == [400, 2000])
        #expect(r.int(.rows) == 4 && r.int(.columns) == 3)
        #expect(r.int(.pixelRepresentation) == 1)
        #expect(r.sequence(Tag(0x0008, 0x1140))?.count == 2)
        #expect(r.sequence(Tag(0x0008, 0x1140))?[1].string(Tag(0x0008, 0x1155)) == "2.25.99")
        #expect(r[Tag(0x0009, 0x1001)]?.bytes == [1, 2, 3, 4])
        #expect(r.string(Tag(0x0009, 0x0010)) == "RADGRID TEST")
        let image = try file.decodePixels()
        #expect(image.shape == [4, 3])
        #expect(image.dtype == "int16")
        #expect(image.storage == .int16((0..<12).map { Int16($0 * 97 - 500) }))
        // Writing what was read reproduces the bytes exactly.
        #expect(try DICOMWriter.write(file) == bytes)
    }

    @Test("multi-frame unsigned 16-bit with Bits Stored 12 masks the unused bits")
    func bitsStoredMasking() throws {
        var ds = DataSet()
        ds.set(.sopInstanceUID, "2.25.5")
        try ds.setPixelData(.uint16([0xF123, 0x0FFF, 0x1000, 0x0001]), rows: 1, columns: 2, frames: 2, bitsStored: 12)
        let img = try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels()
        #expect(img.shape == [2, 1, 2])
        #expect(img.storage == .uint16([0x0123, 0x0FFF, 0x0000, 0x0001]))
    }

    @Test("signed 16-bit with Bits Stored 12 is sign-extended from bit 11")
    func signExtension() throws {
        var ds = DataSet()
        try ds.setPixelData(.int16([0x0800, 0x07FF, Int16(bitPattern: 0xFFFF), 0x0FFF]), rows: 2, columns: 2, bitsStored: 12)
        let img = try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels()
        #expect(img.storage == .int16([-2048, 2047, -1, -1]))
        #expect(img.statistics() == PixelStatistics(min: -2048, max: 2047, mean: (-2048.0 + 2047 - 1 - 1) / 4))
    }

    @Test("8-bit RGB with planar configuration 1 comes back interleaved")
    func planarConfiguration() throws {
        var ds = DataSet()
        // Two pixels, planes R R G G B B.
        try ds.setPixelData(.uint8([10, 11, 20, 21, 30, 31]), rows: 1, columns: 2, samplesPerPixel: 3, photometricInterpretation: "RGB")
        try ds.set(.planarConfiguration, int: 1)
        let img = try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels()
        #expect(img.shape == [1, 2, 3])
        #expect(img.storage == .uint8([10, 20, 30, 11, 21, 31]))
    }

    @Test("YBR_FULL converts to RGB with pydicom's rounding")
    func ybrConversion() throws {
        var ds = DataSet()
        try ds.setPixelData(.uint8([128, 128, 128, 255, 128, 255, 0, 0, 0, 76, 85, 255]), rows: 1, columns: 4,
                            samplesPerPixel: 3, photometricInterpretation: "YBR_FULL")
        let img = try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels()
        #expect(img.photometricInterpretation == "RGB")
        // grey stays grey; clipped; black-ish; (76,85,255) is pure red in BT.601 full range.
        #expect(img.storage == .uint8([128, 128, 128, 255, 164, 255, 0, 135, 0, 254, 0, 0]))
    }

    @Test("signed 32-bit and 8-bit storage round-trip")
    func otherWidths() throws {
        for storage in [PixelStorage.int32([-5, 7, Int32.min, Int32.max]), .uint32([0, 1, UInt32.max, 9]), .int8([-128, 127, 0, -1]), .uint8([0, 255, 3, 4])] {
            var ds = DataSet()
            try ds.setPixelData(storage, rows: 2, columns: 2)
            let img = try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels()
            #expect(img.storage == storage)
        }
    }

    @Test("setters reject values their VR cannot hold")
    func writerValidation() throws {
        var ds = DataSet()
        #expect(throws: DICOMError.self) { try ds.set(.rows, int: 70000) }
        #expect(throws: DICOMError.self) { try ds.set(.sliceThickness, double: .nan) }
        #expect(throws: DICOMError.self) { try ds.setPixelData(.uint8([1, 2, 3]), rows: 2, columns: 2) }
        try ds.set(.sliceThickness, double: 0.1 + 0.2)
        let s = try #require(ds.string(.sliceThickness))
        #expect(s.count <= 16 && Double(s)! == 0.3)
    }
}
