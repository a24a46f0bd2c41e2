import DICOM
import Testing
@testable import Imaging

@Suite struct DICOMInputTests {
    func file(_ storage: PixelStorage, bitsStored: Int? = nil, photometric: String = "MONOCHROME2") throws -> DICOMFile {
        var ds = DataSet()
        ds.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.2", vr: .UI)
        ds.set(.sopInstanceUID, "2.25.1", vr: .UI)
        ds.set(.modality, "CT")
        ds.set(.bodyPartExamined, "HEAD")
        ds.set(.seriesInstanceUID, "2.25.2", vr: .UI)
        try ds.set(.instanceNumber, int: 3)
        try ds.set(.imagePositionPatient, doubles: [-10, -10, 12.5])
        try ds.set(.imageOrientationPatient, doubles: [1, 0, 0, 0, 1, 0])
        try ds.set(.pixelSpacing, doubles: [0.5, 0.75])
        try ds.set(.windowCenter, double: 40)
        try ds.set(.windowWidth, double: 80)
        try ds.set(.rescaleIntercept, double: -1024)
        try ds.set(.rescaleSlope, double: 1)
        try ds.setPixelData(storage, rows: 2, columns: 3, photometricInterpretation: photometric, bitsStored: bitsStored)
        return try DICOMFile.read(DICOMWriter.write(ds))
    }

    @Test func fastPathMatchesDecoder() throws {
        let f = try file(.int16([0, 1024, 1064, -5, 2000, 32767]))
        let fast = try #require(SliceInput.native16(f))
        let slow = try f.decodePixels()
        #expect(fast.pixels == slow.storage)
        let s = try SliceInput(file: f)
        #expect(s.rows == 2 && s.columns == 3)
        #expect(s.modalityLUT == ModalityLUT(slope: 1, intercept: -1024))
        #expect(s.window == VOIWindow(center: 40, width: 80))
        #expect(s.header.imagePosition == [-10, -10, 12.5])
        #expect(s.header.pixelSpacing == [0.5, 0.75])
        #expect(s.header.instanceNumber == 3)
        let info = SeriesInfo(dataSet: f.dataSet)
        #expect(info.modality == "CT" && info.bodyPart == "HEAD" && info.seriesInstanceUID == "2.25.2")
        let out = try SeriesPreprocessor.process(files: [f], options: PreprocessOptions(output: .hu))
        #expect(out.volume.voxels == [-1024, 0, 40, -1029, 976, 31743])
    }

    @Test func twelveBitStoredTakesDecoder() throws {
        let f = try file(.uint16([0, 100, 4095, 7, 8, 9]), bitsStored: 12, photometric: "MONOCHROME1")
        #expect(SliceInput.native16(f) == nil)
        let s = try SliceInput(file: f)
        #expect(s.photometric == .monochrome1)
        #expect(s.pixels == .uint16([0, 100, 4095, 7, 8, 9]))
    }
}
