import DICOM
import DICOMCodecs

/// One frame of a decoded image made ready for a screen: 8 bits per sample, greyscale
/// through the modality LUT (rescale) and a linear VOI window, MONOCHROME1 inverted, colour
/// kept as RGB. What a viewer's `/rendered` request returns, before PNG or JPEG encoding.
public struct DisplayFrame: Sendable {
    public let width: Int
    public let height: Int
    /// 1 (grey) or 3 (RGB, interleaved).
    public let channels: Int
    public let pixels: [UInt8]

    /// Renders frame `frame` (0-based) of `image`. `window` is in output units of the
    /// modality LUT (Hounsfield units for CT); nil uses `defaultWindow`, else the frame's range.
    public static func render(_ image: DecodedImage, frame: Int, lut: ModalityLUT, window: VOIWindow?, defaultWindow: VOIWindow?) throws -> DisplayFrame {
        guard frame >= 0, frame < image.frames else {
            throw ImagingError.invalidParameter("frame \(frame + 1) is outside 1...\(image.frames)")
        }
        let count = image.rows * image.columns * image.samplesPerPixel
        let start = frame * count
        if image.samplesPerPixel == 3 {
            var out = [UInt8](repeating: 0, count: count)
            let shift = max(0, image.bitsStored - 8)
            out.withUnsafeMutableBufferPointer { dst in
                func copy<T: BinaryInteger>(_ a: [T]) {
                    for i in 0..<count { dst[i] = UInt8(clamping: Int(a[start + i]) >> shift) }
                }
                switch image.storage {
                case .uint8(let a): for i in 0..<count { dst[i] = a[start + i] }
                case .int8(let a): copy(a)
                case .uint16(let a): copy(a)
                case .int16(let a): copy(a)
                case .uint32(let a): copy(a)
                case .int32(let a): copy(a)
                }
            }
            return DisplayFrame(width: image.columns, height: image.rows, channels: 3, pixels: out)
        }
        guard image.samplesPerPixel == 1 else { throw ImagingError.unsupported("\(image.samplesPerPixel) samples per pixel") }
        let invert = image.photometricInterpretation == "MONOCHROME1"
        let chosen: VOIWindow
        if let given = window ?? defaultWindow, given.isValid {
            chosen = given
        } else {
            // No usable window: the frame's own range.
            var lo = Double.infinity, hi = -Double.infinity
            func scan<T: BinaryInteger>(_ a: [T]) {
                for i in start..<(start + count) { let v = Double(a[i]); lo = min(lo, v); hi = max(hi, v) }
            }
            switch image.storage {
            case .uint8(let a): scan(a)
            case .int8(let a): scan(a)
            case .uint16(let a): scan(a)
            case .int16(let a): scan(a)
            case .uint32(let a): scan(a)
            case .int32(let a): scan(a)
            }
            let a = lut.apply(lo), b = lut.apply(hi)
            chosen = VOIWindow(center: (a + b) / 2, width: max(1, abs(b - a) + 1))
        }
        // y = clamp((lut(x) - low) * scale) over [0, 255], as one affine map of the stored value.
        let low = chosen.lowerBound, span = max(1e-9, chosen.upperBound - chosen.lowerBound)
        let scale = 255 / span * lut.slope
        let offset = (lut.intercept - low) * 255 / span
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { dst in
            @inline(__always) func map(_ x: Double) -> UInt8 {
                let y = x * scale + offset
                let clamped = y <= 0 ? 0 : (y >= 255 ? 255 : y.rounded())
                return invert ? 255 - UInt8(clamped) : UInt8(clamped)
            }
            func small<T: BinaryInteger>(_ a: [T], minimum: Int, maximum: Int) {
                // 8- and 16-bit stored values: one table lookup per pixel.
                var table = [UInt8](repeating: 0, count: maximum - minimum + 1)
                for v in minimum...maximum { table[v - minimum] = map(Double(v)) }
                table.withUnsafeBufferPointer { t in
                    a.withUnsafeBufferPointer { src in
                        for i in 0..<count { dst[i] = t[Int(src[start + i]) - minimum] }
                    }
                }
            }
            switch image.storage {
            case .uint8(let a): small(a, minimum: 0, maximum: 255)
            case .int8(let a): small(a, minimum: -128, maximum: 127)
            case .uint16(let a): small(a, minimum: 0, maximum: 65535)
            case .int16(let a): small(a, minimum: -32768, maximum: 32767)
            case .uint32(let a): for i in 0..<count { dst[i] = map(Double(a[start + i])) }
            case .int32(let a): for i in 0..<count { dst[i] = map(Double(a[start + i])) }
            }
        }
        return DisplayFrame(width: image.columns, height: image.rows, channels: 1, pixels: out)
    }

    /// The frame as PNG (zlib level 1: these images are made per request).
    public func png() throws -> [UInt8] {
        channels == 3 ? try PNGEncoder.encodeRGB8(width: width, height: height, pixels: pixels, level: 1)
                      : try PNGEncoder.encodeGray8(width: width, height: height, pixels: pixels, level: 1)
    }
}

extension DisplayFrame {
    /// The frame as baseline JPEG (lossy: for quick looks, never for diagnosis).
    public func jpeg(quality: Int = 90) throws -> [UInt8] {
        try JPEGBaselineEncoder.encode(pixels, width: width, height: height, components: channels, quality: quality)
    }
}
