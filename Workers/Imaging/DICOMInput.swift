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
        if let fast = SliceInput.native16(file) {
            self = fast
            return
        }
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

extension SliceInput {
    /// Fast path for the commonest CT/MR layout: native little-endian, one frame, one sample,
    /// 16 bits allocated and stored. The pixel bytes are copied straight into an Int16/UInt16
    /// array (one memcpy) instead of going through the general decoder. Anything else
    /// returns nil and takes `decodePixels()`.
    static func native16(_ file: DICOMFile) -> SliceInput? {
        #if _endian(little)
        let ds = file.dataSet
        let ts = file.transferSyntax
        guard !ts.isBigEndian, !ts.isEncapsulated, file.truncation == nil,
              ds.int(.bitsAllocated) == 16, ds.int(.bitsStored) == 16, (ds.int(.samplesPerPixel) ?? 1) == 1,
              (ds.int(.numberOfFrames) ?? 1) == 1,
              let rows = ds.int(.rows), let columns = ds.int(.columns), rows > 0, columns > 0,
              let signed = ds.int(.pixelRepresentation),
              let photometric = Photometric(dicom: ds.string(.photometricInterpretation)),
              let bytes = ds[.pixelData]?.bytes else { return nil }
        let n = rows * columns
        guard bytes.count >= 2 * n else { return nil }
        let storage: PixelStorage = bytes.withUnsafeBytes { raw in
            if signed == 1 {
                return .int16([Int16](unsafeUninitializedCapacity: n) { buf, count in
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(2 * n)]))
                    count = n
                })
            }
            return .uint16([UInt16](unsafeUninitializedCapacity: n) { buf, count in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(2 * n)]))
                count = n
            })
        }
        var window: VOIWindow?
        if let c = ds.double(.windowCenter), let w = ds.double(.windowWidth) { window = VOIWindow(center: c, width: w) }
        return SliceInput(pixels: storage, rows: rows, columns: columns,
                          modalityLUT: ModalityLUT(slope: ds.double(.rescaleSlope) ?? 1, intercept: ds.double(.rescaleIntercept) ?? 0),
                          photometric: photometric, window: window, header: SliceInput.header(of: ds), truncated: false)
        #else
        return nil
        #endif
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
