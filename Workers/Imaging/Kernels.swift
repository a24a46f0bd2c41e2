import DICOM

/// How tensor values relate to modality-LUT output (HU for CT):
///
///     tensor = clamp(hu, huMin, huMax) * scale + offset
///
/// Windowing, [lo, hi] normalisation, MONOCHROME1 inversion and plain HU output are all this
/// one affine-plus-clamp form, so the Modality LUT and the output mapping fuse into a single
/// pass over the stored pixels (`Kernels.mapStored`). Screeners use `tensorValue(hu:)` to move
/// HU thresholds into tensor space instead of converting every voxel back.
public struct IntensityMapping: Sendable, Equatable, Codable {
    public var scale: Double
    public var offset: Double
    /// HU clamp bounds (nil: unbounded).
    public var huMin: Double?
    public var huMax: Double?
    /// What produced the mapping, for the sidecar: "hu", "window", "range".
    public var kind: String
    /// The window when `kind == "window"`.
    public var window: VOIWindow?
    public var inverted: Bool

    public init(scale: Double, offset: Double, huMin: Double?, huMax: Double?, kind: String, window: VOIWindow? = nil, inverted: Bool = false) {
        self.scale = scale
        self.offset = offset
        self.huMin = huMin
        self.huMax = huMax
        self.kind = kind
        self.window = window
        self.inverted = inverted
    }

    /// Tensor holds HU as is.
    public static let hu = IntensityMapping(scale: 1, offset: 0, huMin: nil, huMax: nil, kind: "hu")

    /// Linear VOI window to [0, 1] (PS3.3 C.11.2.1.2); `invert` gives 1 - y (MONOCHROME1 display).
    public static func window(_ w: VOIWindow, invert: Bool = false) throws -> IntensityMapping {
        guard w.isValid, w.width > 1 else {
            throw ImagingError.invalidParameter("window width must be > 1 (got \(w.width))")
        }
        var scale = 1 / (w.width - 1)
        var offset = 0.5 - (w.center - 0.5) / (w.width - 1)
        if invert { scale = -scale; offset = 1 - offset }
        return IntensityMapping(scale: scale, offset: offset, huMin: w.lowerBound, huMax: w.upperBound,
                                kind: "window", window: w, inverted: invert)
    }

    /// Clamp to [lo, hi] then scale to [0, 1] (`invert`: to [1, 0]).
    public static func range(_ lo: Double, _ hi: Double, invert: Bool = false) throws -> IntensityMapping {
        guard hi > lo, lo.isFinite, hi.isFinite else { throw ImagingError.invalidParameter("range needs lo < hi") }
        var scale = 1 / (hi - lo)
        var offset = -lo / (hi - lo)
        if invert { scale = -scale; offset = 1 - offset }
        return IntensityMapping(scale: scale, offset: offset, huMin: lo, huMax: hi, kind: "range", inverted: invert)
    }

    @inline(__always)
    public func tensorValue(hu: Double) -> Double {
        var h = hu
        if let lo = huMin, h < lo { h = lo }
        if let hi = huMax, h > hi { h = hi }
        return h * scale + offset
    }

    /// Inverse (exact inside the clamp range).
    @inline(__always)
    public func hu(tensor: Double) -> Double { (tensor - offset) / scale }

    /// The affine-plus-clamp parameters for stored values with a given Modality LUT.
    public func fused(with lut: ModalityLUT) -> AffineClamp {
        let a = lut.slope * scale
        let b = lut.intercept * scale + offset
        var lo = -Double(Float.greatestFiniteMagnitude), hi = Double(Float.greatestFiniteMagnitude)
        if let m = huMin { let t = m * scale + offset; if scale >= 0 { lo = t } else { hi = t } }
        if let m = huMax { let t = m * scale + offset; if scale >= 0 { hi = t } else { lo = t } }
        return AffineClamp(a: Float(a), b: Float(b), lo: Float(lo), hi: Float(hi))
    }
}

/// `y = min(max(x * a + b, lo), hi)` in Float32.
public struct AffineClamp: Sendable, Equatable {
    public var a: Float, b: Float, lo: Float, hi: Float
    public init(a: Float, b: Float, lo: Float, hi: Float) { self.a = a; self.b = b; self.lo = lo; self.hi = hi }
}

/// Hot-loop kernels over caller-provided buffers. None of them allocates.
public enum Kernels {
    /// Stored integer pixels -> Float32 through one fused affine map and clamp
    /// (Modality LUT + window/normalisation/inversion).
    @inlinable
    public static func mapStored<T: BinaryInteger>(_ src: UnsafeBufferPointer<T>, into dst: UnsafeMutableBufferPointer<Float>, _ f: AffineClamp) {
        let n = min(src.count, dst.count)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        let a = f.a, b = f.b, lo = f.lo, hi = f.hi
        for i in 0..<n {
            var v = Float(s[i]) * a + b
            v = v < lo ? lo : v
            v = v > hi ? hi : v
            d[i] = v
        }
    }

    /// The same map over Float input (e.g. an HU volume to a display window).
    @inlinable
    public static func mapFloat(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>, _ f: AffineClamp) {
        let n = min(src.count, dst.count)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        let a = f.a, b = f.b, lo = f.lo, hi = f.hi
        for i in 0..<n {
            var v = s[i] * a + b
            v = v < lo ? lo : v
            v = v > hi ? hi : v
            d[i] = v
        }
    }

    /// Float in [0, 1] -> 8-bit grey (rounded, clamped).
    @inlinable
    public static func toUInt8(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<UInt8>) {
        let n = min(src.count, dst.count)
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        for i in 0..<n {
            var v = s[i] * 255 + 0.5
            v = v < 0 ? 0 : v
            v = v > 255 ? 255 : v
            d[i] = UInt8(v)
        }
    }

    /// MONOCHROME1 inversion of stored values in place: `x -> (minStored + maxStored) - x`
    /// over the stored range implied by Bits Stored / Pixel Representation, so the lowest
    /// value becomes the highest. Used when a caller wants MONOCHROME2-like stored values
    /// rather than an inverted output mapping.
    public static func invertStored(_ buf: UnsafeMutableBufferPointer<UInt16>, bitsStored: Int) {
        let maxV = UInt16(truncatingIfNeeded: (1 << bitsStored) - 1)
        for i in buf.indices { buf[i] = maxV &- min(buf[i], maxV) }
    }

    public static func invertStored(_ buf: UnsafeMutableBufferPointer<Int16>, bitsStored: Int) {
        // Signed range [-2^(b-1), 2^(b-1)-1]: min + max = -1.
        for i in buf.indices { buf[i] = -1 &- buf[i] }
    }

    public static func invertStored(_ buf: UnsafeMutableBufferPointer<UInt8>, bitsStored: Int) {
        let maxV = UInt8(truncatingIfNeeded: (1 << bitsStored) - 1)
        for i in buf.indices { buf[i] = maxV &- min(buf[i], maxV) }
    }
}

extension PixelStorage {
    /// Runs `Kernels.mapStored` on whichever integer type this storage holds.
    public func map(into dst: UnsafeMutableBufferPointer<Float>, _ f: AffineClamp) {
        switch self {
        case .uint8(let a): a.withUnsafeBufferPointer { Kernels.mapStored($0, into: dst, f) }
        case .int8(let a): a.withUnsafeBufferPointer { Kernels.mapStored($0, into: dst, f) }
        case .uint16(let a): a.withUnsafeBufferPointer { Kernels.mapStored($0, into: dst, f) }
        case .int16(let a): a.withUnsafeBufferPointer { Kernels.mapStored($0, into: dst, f) }
        case .uint32(let a): a.withUnsafeBufferPointer { Kernels.mapStored($0, into: dst, f) }
        case .int32(let a): a.withUnsafeBufferPointer { Kernels.mapStored($0, into: dst, f) }
        }
    }
}
