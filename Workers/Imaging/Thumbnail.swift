import DICOM
/// Worklist thumbnails: the middle slice of a series in its reading window, scaled to fit a
/// square of `maxDimension` pixels, as an 8-bit grayscale PNG.
public enum Thumbnail {
    /// An RGB PNG of a decoded colour image (the first frame), at most `maxDimension` on its
    /// longer side (nearest-neighbour: a thumbnail for a worklist, not for reading).
    public static func colourPNG(_ image: DecodedImage, maxDimension: Int = 256) throws -> [UInt8] {
        guard image.samplesPerPixel == 3, image.rows > 0, image.columns > 0 else {
            throw ImagingError.unsupported("a colour thumbnail needs 3 samples per pixel")
        }
        let scale = min(1, Double(maxDimension) / Double(max(image.rows, image.columns)))
        let width = max(1, Int((Double(image.columns) * scale).rounded())), height = max(1, Int((Double(image.rows) * scale).rounded()))
        var out = [UInt8](repeating: 0, count: width * height * 3)
        // Samples as 8 bits: 16-bit colour keeps its high byte.
        func sample(_ index: Int) -> UInt8 {
            switch image.storage {
            case .uint8(let a): a[index]
            case .int8(let a): UInt8(bitPattern: a[index])
            case .uint16(let a): UInt8(truncatingIfNeeded: a[index] >> UInt16(max(0, image.bitsStored - 8)))
            case .int16(let a): UInt8(truncatingIfNeeded: max(0, Int(a[index])) >> max(0, image.bitsStored - 8))
            case .uint32(let a): UInt8(truncatingIfNeeded: a[index] >> UInt32(max(0, image.bitsStored - 8)))
            case .int32(let a): UInt8(truncatingIfNeeded: max(0, Int(a[index])) >> max(0, image.bitsStored - 8))
            }
        }
        for y in 0..<height {
            let sy = min(image.rows - 1, y * image.rows / height)
            for x in 0..<width {
                let sx = min(image.columns - 1, x * image.columns / width)
                let source = (sy * image.columns + sx) * 3, target = (y * width + x) * 3
                for channel in 0..<3 { out[target + channel] = sample(source + channel) }
            }
        }
        return try PNGEncoder.encodeRGB8(width: width, height: height, pixels: out)
    }

    public static func pixels(_ series: PreprocessedSeries, maxDimension: Int = 256, slice: Int? = nil) throws -> (width: Int, height: Int, gray: [UInt8]) {
        let v = series.volume
        guard v.depth > 0 else { throw ImagingError.emptySeries }
        let z = min(max(slice ?? v.depth / 2, 0), v.depth - 1)
        // tensor -> HU -> window [0,1]: compose the inverse mapping with the display window.
        let display = try IntensityMapping.window(series.displayWindow, invert: false)
        let f: AffineClamp
        if series.mapping.kind == "window" && series.mapping.window == series.displayWindow {
            f = AffineClamp(a: 1, b: 0, lo: 0, hi: 1)
        } else {
            let a = display.scale / series.mapping.scale
            let b = display.offset - series.mapping.offset * display.scale / series.mapping.scale
            f = AffineClamp(a: Float(a), b: Float(b), lo: 0, hi: 1)
        }
        let scale = min(1, Double(maxDimension) / Double(max(v.width, v.height)))
        let tw = max(1, Int((Double(v.width) * scale).rounded())), th = max(1, Int((Double(v.height) * scale).rounded()))
        var windowed = [Float](repeating: 0, count: v.sliceCount)
        v.voxels.withUnsafeBufferPointer { src in
            windowed.withUnsafeMutableBufferPointer { dst in
                Kernels.mapFloat(UnsafeBufferPointer(rebasing: src[(z * v.sliceCount)..<((z + 1) * v.sliceCount)]), into: dst, f)
            }
        }
        var small = windowed
        if tw != v.width || th != v.height {
            var r = try Resampler(sourceWidth: v.width, sourceHeight: v.height, targetWidth: tw, targetHeight: th)
            small = [Float](repeating: 0, count: tw * th)
            try windowed.withUnsafeBufferPointer { s in try small.withUnsafeMutableBufferPointer { d in try r.resample(s, into: d) } }
        }
        var gray = [UInt8](repeating: 0, count: tw * th)
        small.withUnsafeBufferPointer { s in gray.withUnsafeMutableBufferPointer { d in Kernels.toUInt8(s, into: d) } }
        return (tw, th, gray)
    }

    public static func png(_ series: PreprocessedSeries, maxDimension: Int = 256) throws -> [UInt8] {
        let t = try pixels(series, maxDimension: maxDimension)
        return try PNGEncoder.encodeGray8(width: t.width, height: t.height, pixels: t.gray)
    }
}

/// The JSON sidecar written next to a raw Float32 tensor.
public struct TensorSidecar: Sendable, Codable, Equatable {
    public var format: String = "radgrid-tensor/1"
    public var dtype: String = "float32"
    public var byteOrder: String = "little"
    /// [depth, height, width].
    public var shape: [Int]
    /// [z, y, x] mm (null when unknown).
    public var spacing: [Double?]
    public var mapping: IntensityMapping
    public var window: VOIWindow
    public var sortMethod: String
    public var missingSlices: Int
    public var unevenSpacing: Bool
    public var sourceSize: [Int]
    public var seriesInstanceUID: String?
    public var modality: String?
    public var bodyPart: String?

    public init(_ s: PreprocessedSeries) {
        shape = s.volume.shape
        spacing = [s.volume.spacing.z, s.volume.spacing.y, s.volume.spacing.x]
        mapping = s.mapping
        window = s.displayWindow
        sortMethod = s.geometry.sortMethod.rawValue
        missingSlices = s.geometry.missingSlices
        unevenSpacing = s.geometry.unevenSpacing
        sourceSize = [s.sourceHeight, s.sourceWidth]
        seriesInstanceUID = s.info.seriesInstanceUID
        modality = s.info.modality
        bodyPart = s.info.bodyPart
    }
}
