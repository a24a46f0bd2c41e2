import DICOM

/// Stored pixel values of one 2D grayscale image are the DICOM module's `PixelStorage`
/// (decoder output, before the Modality LUT); these helpers add what the kernels need.
extension PixelStorage {
    /// Bytes per stored sample.
    public var bytesPerSample: Int {
        switch self {
        case .uint8, .int8: 1
        case .uint16, .int16: 2
        case .uint32, .int32: 4
        }
    }

    /// Smallest and largest stored value (nil when empty). Not a hot-path function.
    public func minMax() -> (min: Double, max: Double)? {
        func mm<T: BinaryInteger>(_ a: [T]) -> (Double, Double)? {
            guard let lo = a.min(), let hi = a.max() else { return nil }
            return (Double(lo), Double(hi))
        }
        switch self {
        case .uint8(let a): return mm(a)
        case .int8(let a): return mm(a)
        case .uint16(let a): return mm(a)
        case .int16(let a): return mm(a)
        case .uint32(let a): return mm(a)
        case .int32(let a): return mm(a)
        }
    }
}

/// Photometric interpretations the grayscale path accepts.
public enum Photometric: String, Sendable, Codable, Equatable {
    /// Lowest value displayed black.
    case monochrome2 = "MONOCHROME2"
    /// Lowest value displayed white: windowed output is inverted so the tensor reads like MONOCHROME2.
    case monochrome1 = "MONOCHROME1"

    public init?(dicom text: String?) {
        switch text?.uppercased() {
        case nil, "", "MONOCHROME2": self = .monochrome2
        case "MONOCHROME1": self = .monochrome1
        default: return nil
        }
    }
}
