import DICOM

/// One decoded grayscale slice with the header attributes preprocessing needs.
public struct SliceInput: Sendable {
    public var pixels: PixelStorage
    public var rows: Int
    public var columns: Int
    public var modalityLUT: ModalityLUT
    public var photometric: Photometric
    /// Window Center / Width from the file (first pair), if any.
    public var window: VOIWindow?
    public var header: SliceHeader
    /// The pixel data ended early (reader tolerated a truncated file); missing pixels are 0.
    public var truncated: Bool

    public init(pixels: PixelStorage, rows: Int, columns: Int, modalityLUT: ModalityLUT = .identity,
                photometric: Photometric = .monochrome2, window: VOIWindow? = nil, header: SliceHeader = SliceHeader(),
                truncated: Bool = false) {
        self.pixels = pixels
        self.rows = rows
        self.columns = columns
        self.modalityLUT = modalityLUT
        self.photometric = photometric
        self.window = window
        self.header = header
        self.truncated = truncated
    }
}

/// Series-level attributes carried through to screeners and the sidecar.
public struct SeriesInfo: Sendable, Equatable, Codable {
    public var seriesInstanceUID: String?
    public var modality: String?
    public var bodyPart: String?
    /// Non-identifying attributes worth passing on (e.g. "SeriesDescription"); no patient data.
    public var tags: [String: String]

    public init(seriesInstanceUID: String? = nil, modality: String? = nil, bodyPart: String? = nil, tags: [String: String] = [:]) {
        self.seriesInstanceUID = seriesInstanceUID
        self.modality = modality
        self.bodyPart = bodyPart
        self.tags = tags
    }
}

/// Where the VOI window comes from.
public enum WindowSource: Sendable, Equatable {
    /// The file's Window Center/Width if present and valid, else the body-part preset, else a
    /// modality default (CT: soft tissue), else the stored range of the first slice.
    case auto
    case preset(WindowPreset)
    case explicit(VOIWindow)
}

/// What the tensor holds.
public enum OutputMapping: Sendable, Equatable {
    /// The VOI window mapped to [0, 1] (inverted for MONOCHROME1).
    case window
    /// Modality LUT output as is (HU for CT); MONOCHROME1 is not inverted (values keep their meaning).
    case hu
    /// Modality LUT output clamped to [lo, hi] and scaled to [0, 1] (inverted for MONOCHROME1).
    case range(Double, Double)
}

public struct PreprocessOptions: Sendable, Equatable {
    /// Target in-plane size (columns, rows); nil keeps the source matrix.
    public var targetWidth: Int?
    public var targetHeight: Int?
    public var window: WindowSource
    public var output: OutputMapping
    /// Relative spacing tolerance for the uneven-spacing check.
    public var spacingTolerance: Double

    public init(targetWidth: Int? = nil, targetHeight: Int? = nil, window: WindowSource = .auto, output: OutputMapping = .window,
                spacingTolerance: Double = 0.1) {
        self.targetWidth = targetWidth
        self.targetHeight = targetHeight
        self.window = window
        self.output = output
        self.spacingTolerance = spacingTolerance
    }

    /// For screeners: HU tensor at native resolution.
    public static let screening = PreprocessOptions(output: .hu)
}

/// Problems met while assembling a series (not errors: screeners' QC reports them).
public struct SourceIssues: Sendable, Equatable, Codable {
    public var truncatedSlices: Int = 0
    public var missingPixelSpacing: Bool = false
    public init() {}
}

/// A preprocessed series: what screeners, the tensor writer and the thumbnail work on.
public struct PreprocessedSeries: Sendable {
    public var volume: Volume
    /// tensor = clamp(HU) * scale + offset.
    public var mapping: IntensityMapping
    /// Reading window (for the thumbnail and reports).
    public var displayWindow: VOIWindow
    public var geometry: SeriesGeometry
    public var info: SeriesInfo
    public var issues: SourceIssues
    /// Matrix size before resampling (columns, rows).
    public var sourceWidth: Int
    public var sourceHeight: Int

    public init(volume: Volume, mapping: IntensityMapping, displayWindow: VOIWindow, geometry: SeriesGeometry, info: SeriesInfo,
                issues: SourceIssues = SourceIssues(), sourceWidth: Int? = nil, sourceHeight: Int? = nil) {
        self.volume = volume
        self.mapping = mapping
        self.displayWindow = displayWindow
        self.geometry = geometry
        self.info = info
        self.issues = issues
        self.sourceWidth = sourceWidth ?? volume.width
        self.sourceHeight = sourceHeight ?? volume.height
    }
}

/// Streaming series preprocessor: `add` each slice as it is decoded (any order), then
/// `finish` sorts, checks spacing and returns the volume. Per-slice work goes through
/// buffers allocated once (the mapped full-resolution slice and the resampler's scratch),
/// writing straight into the growing output tensor.
public struct SeriesPreprocessor: Sendable {
    public let options: PreprocessOptions
    public let info: SeriesInfo
    private var headers: [SliceHeader] = []
    private var voxels: [Float] = []
    private var scratch: [Float] = []
    private var resampler: Resampler?
    private var sourceWidth = 0, sourceHeight = 0, outWidth = 0, outHeight = 0
    private var baseMapping: IntensityMapping?
    private var window: VOIWindow?
    private var issues = SourceIssues()
    private let expectedSlices: Int

    /// - Parameter buffer: storage to reuse for the output tensor (e.g. the `voxels` of the
    ///   previous series a worker slot finished with), so steady-state processing neither
    ///   allocates nor page-faults a fresh tensor per series.
    public init(options: PreprocessOptions = PreprocessOptions(), info: SeriesInfo = SeriesInfo(), expectedSlices: Int = 0, buffer: [Float] = []) {
        self.options = options
        self.info = info
        self.expectedSlices = expectedSlices
        self.voxels = buffer
    }

    public var sliceCount: Int { headers.count }

    /// Resolves the reading window for a series given its first slice.
    public static func resolveWindow(_ source: WindowSource, slice: SliceInput, info: SeriesInfo) -> VOIWindow {
        switch source {
        case .explicit(let w): return w
        case .preset(let p): return p.window
        case .auto:
            if let w = slice.window, w.isValid, w.width > 1 { return w }
            if let p = WindowPreset.forBodyPart(info.bodyPart) { return p.window }
            if info.modality?.uppercased() == "CT" { return WindowPreset.softTissue.window }
            let range = slice.pixels.minMax() ?? (0, 1)
            let a = slice.modalityLUT.apply(range.min), b = slice.modalityLUT.apply(range.max)
            let lo = min(a, b), hi = max(a, b)
            return VOIWindow(center: (lo + hi + 1) / 2, width: max(2, hi - lo + 1))
        }
    }

    public mutating func add(_ slice: SliceInput) throws {
        guard slice.rows > 0, slice.columns > 0 else { throw ImagingError.invalidParameter("slice has no pixels") }
        guard slice.pixels.count >= slice.rows * slice.columns else {
            throw ImagingError.sizeMismatch("slice pixels", expected: slice.rows * slice.columns, got: slice.pixels.count)
        }
        if headers.isEmpty {
            sourceWidth = slice.columns
            sourceHeight = slice.rows
            outWidth = options.targetWidth ?? slice.columns
            outHeight = options.targetHeight ?? slice.rows
            let w = SeriesPreprocessor.resolveWindow(options.window, slice: slice, info: info)
            window = w
            switch options.output {
            case .window: baseMapping = try IntensityMapping.window(w)
            case .hu: baseMapping = .hu
            case .range(let lo, let hi): baseMapping = try IntensityMapping.range(lo, hi)
            }
            if outWidth != sourceWidth || outHeight != sourceHeight {
                resampler = try Resampler(sourceWidth: sourceWidth, sourceHeight: sourceHeight, targetWidth: outWidth, targetHeight: outHeight)
                scratch = [Float](repeating: 0, count: sourceWidth * sourceHeight)
            }
            let need = max(1, expectedSlices) * outWidth * outHeight
            if voxels.count < need {
                // Every slot is written by `add` before `finish` hands it out (unused tail slots
                // are cut), so the fresh tensor need not be zero-filled first.
                voxels = [Float](unsafeUninitializedCapacity: need) { _, count in count = need }
            }
        } else if slice.columns != sourceWidth || slice.rows != sourceHeight {
            throw ImagingError.inconsistentSeries("slice \(headers.count) is \(slice.columns)x\(slice.rows), series is \(sourceWidth)x\(sourceHeight)")
        }

        var mapping = baseMapping!
        if slice.photometric == .monochrome1 && mapping.kind != "hu" {
            mapping.scale = -mapping.scale
            mapping.offset = 1 - mapping.offset
            mapping.inverted = true
        }
        let fused = mapping.fused(with: slice.modalityLUT)
        let outCount = outWidth * outHeight
        let start = headers.count * outCount
        if voxels.count < start + outCount {
            // More slices than announced: grow geometrically (bulk zero fill, not per element).
            voxels.append(contentsOf: [Float](repeating: 0, count: max(outCount, voxels.count)))
        }
        if var r = resampler {
            // Map at full resolution into scratch, then resample into the output slot.
            scratch.withUnsafeMutableBufferPointer { s in slice.pixels.map(into: s, fused) }
            resampler = nil // keep the resampler's scratch uniquely referenced while it runs
            try scratch.withUnsafeBufferPointer { s in
                try voxels.withUnsafeMutableBufferPointer { v in
                    try r.resample(s, into: UnsafeMutableBufferPointer(rebasing: v[start..<(start + outCount)]))
                }
            }
            resampler = r
        } else {
            voxels.withUnsafeMutableBufferPointer { v in
                slice.pixels.map(into: UnsafeMutableBufferPointer(rebasing: v[start..<(start + outCount)]), fused)
            }
        }
        if slice.truncated { issues.truncatedSlices += 1 }
        headers.append(slice.header)
    }

    /// Sorts the slices, reports geometry and returns the series.
    public mutating func finish() throws -> PreprocessedSeries {
        guard !headers.isEmpty, let mapping = baseMapping, let window else { throw ImagingError.emptySeries }
        let geometry = SeriesGeometry.assemble(headers, tolerance: options.spacingTolerance)
        let n = outWidth * outHeight
        if voxels.count > headers.count * n { voxels.removeLast(voxels.count - headers.count * n) }
        var ordered: [Float]
        if geometry.order == Array(0..<headers.count) {
            ordered = voxels
        } else {
            ordered = [Float](repeating: 0, count: voxels.count)
            ordered.withUnsafeMutableBufferPointer { o in
                voxels.withUnsafeBufferPointer { v in
                    for (k, i) in geometry.order.enumerated() {
                        (o.baseAddress! + k * n).update(from: v.baseAddress! + i * n, count: n)
                    }
                }
            }
        }
        voxels = []
        let ps = headers.first?.pixelSpacing
        let validPS = ps.map { $0.count == 2 && $0.allSatisfy { $0 > 0 && $0.isFinite } } ?? false
        issues.missingPixelSpacing = !validPS
        // Resampling changes the in-plane spacing by the size ratio.
        let sx = validPS ? ps![1] * Double(sourceWidth) / Double(outWidth) : nil
        let sy = validPS ? ps![0] * Double(sourceHeight) / Double(outHeight) : nil
        let sz = geometry.sliceSpacing ?? headers.first?.sliceThickness
        let volume = try Volume(width: outWidth, height: outHeight, depth: headers.count, spacing: Spacing(x: sx, y: sy, z: sz), voxels: ordered)
        return PreprocessedSeries(volume: volume, mapping: mapping, displayWindow: window, geometry: geometry, info: info,
                                  issues: issues, sourceWidth: sourceWidth, sourceHeight: sourceHeight)
    }

    /// Convenience: a whole series at once.
    public static func process(_ slices: [SliceInput], info: SeriesInfo = SeriesInfo(), options: PreprocessOptions = PreprocessOptions()) throws -> PreprocessedSeries {
        var p = SeriesPreprocessor(options: options, info: info, expectedSlices: slices.count)
        for s in slices { try p.add(s) }
        return try p.finish()
    }
}
