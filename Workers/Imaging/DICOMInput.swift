import DICOM

/// Turning DICOM files into preprocessor inputs.
extension SliceInput {
    /// Geometry and VOI attributes of a data set (no pixel decoding).
    public static func header(of ds: DataSet) -> SliceHeader {
        SliceHeader(imagePosition: ds.doubles(.imagePositionPatient).flatMap { $0.count == 3 ? $0 : nil },
                    imageOrientation: ds.doubles(.imageOrientationPatient).flatMap { $0.count == 6 ? $0 : nil },
                    instanceNumber: ds.int(.instanceNumber),
                    pixelSpacing: ds.doubles(.pixelSpacing).flatMap { $0.count == 2 ? $0 : nil },
                    sliceThickness: ds.double(.sliceThickness))
    }

    /// Decodes one single-frame grayscale image. Multi-frame and colour images are refused
    /// (`imaging.unsupported`); a truncated file read with `allowTruncated` is flagged.
    public init(file: DICOMFile) throws {
        let ds = file.dataSet
        let image = try file.decodePixels()
        guard image.samplesPerPixel == 1 else { throw ImagingError.unsupported("\(image.samplesPerPixel) samples per pixel") }
        guard image.frames == 1 else { throw ImagingError.unsupported("multi-frame image (\(image.frames) frames)") }
        guard let photometric = Photometric(dicom: image.photometricInterpretation) else {
            throw ImagingError.unsupported("photometric interpretation is not MONOCHROME1/2")
        }
        var window: VOIWindow?
        if let c = ds.double(.windowCenter), let w = ds.double(.windowWidth) { window = VOIWindow(center: c, width: w) }
        self.init(pixels: image.storage, rows: image.rows, columns: image.columns,
                  modalityLUT: ModalityLUT(slope: ds.double(.rescaleSlope) ?? 1, intercept: ds.double(.rescaleIntercept) ?? 0),
                  photometric: photometric, window: window, header: SliceInput.header(of: ds), truncated: file.truncation != nil)
    }
}

extension SeriesInfo {
    /// Series-level attributes from one instance (no patient identifiers are copied).
    public init(dataSet ds: DataSet) {
        var tags: [String: String] = [:]
        if let d = ds.string(.seriesDescription), !d.isEmpty { tags["SeriesDescription"] = d }
        if let m = ds.string(.manufacturer), !m.isEmpty { tags["Manufacturer"] = m }
        self.init(seriesInstanceUID: ds.string(.seriesInstanceUID), modality: ds.string(.modality),
                  bodyPart: ds.string(.bodyPartExamined), tags: tags)
    }
}

extension SeriesPreprocessor {
    /// Preprocesses DICOM files of one series (any order).
    public static func process(files: [DICOMFile], options: PreprocessOptions = PreprocessOptions()) throws -> PreprocessedSeries {
        guard let first = files.first else { throw ImagingError.emptySeries }
        var p = SeriesPreprocessor(options: options, info: SeriesInfo(dataSet: first.dataSet), expectedSlices: files.count)
        for f in files { try p.add(SliceInput(file: f)) }
        return try p.finish()
    }
}
