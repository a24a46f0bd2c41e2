import DICOM
import Imaging

extension Phantom {
    /// CT Image Storage.
    public static let ctImageStorageUID = "1.2.840.10008.5.1.4.1.1.2"

    /// The series as DICOM Part 10 files (Explicit VR Little Endian, 16-bit signed native
    /// pixels), one per slice, in slice order. Synthetic identifiers only.
    public func dicomFiles() throws -> [[UInt8]] {
        let study = "2.25.\(spec.seed % 999_999_937)0"
        let series = info.seriesInstanceUID ?? "\(study).1"
        var files: [[UInt8]] = []
        for (k, s) in slices.enumerated() {
            var ds = DataSet()
            ds.set(.specificCharacterSet, "ISO_IR 192")
            ds.set(.imageType, strings: ["DERIVED", "SECONDARY", "AXIAL"])
            ds.set(.sopClassUID, Phantom.ctImageStorageUID, vr: .UI)
            ds.set(.sopInstanceUID, "\(series).\(k + 1)", vr: .UI)
            ds.set(.modality, "CT")
            ds.set(.manufacturer, "RadGrid phantom")
            ds.set(.seriesDescription, info.tags["SeriesDescription"] ?? "phantom")
            ds.set(.patientName, "PHANTOM^\(spec.kind.rawValue.uppercased())")
            ds.set(.patientID, "PHANTOM-\(spec.seed)")
            ds.set(.bodyPartExamined, info.bodyPart ?? "")
            try ds.set(.sliceThickness, double: spec.sliceSpacing)
            ds.set(.studyInstanceUID, study, vr: .UI)
            ds.set(.seriesInstanceUID, series, vr: .UI)
            try ds.set(.seriesNumber, int: 1)
            try ds.set(.instanceNumber, int: s.header.instanceNumber ?? (k + 1))
            if let p = s.header.imagePosition { try ds.set(.imagePositionPatient, doubles: p) }
            if let o = s.header.imageOrientation { try ds.set(.imageOrientationPatient, doubles: o) }
            ds.set(.frameOfReferenceUID, "\(study).9", vr: .UI)
            if let ps = s.header.pixelSpacing { try ds.set(.pixelSpacing, doubles: ps) }
            if let w = s.window {
                try ds.set(.windowCenter, double: w.center)
                try ds.set(.windowWidth, double: w.width)
            }
            try ds.set(.rescaleIntercept, double: s.modalityLUT.intercept)
            try ds.set(.rescaleSlope, double: s.modalityLUT.slope)
            ds.set(.rescaleType, "HU")
            try ds.setPixelData(s.pixels, rows: s.rows, columns: s.columns, photometricInterpretation: s.photometric.rawValue, bitsStored: 16)
            files.append(try DICOMWriter.write(ds))
        }
        return files
    }
}
