/// One slice straight to rounded Hounsfield units at the worker's screening size.
///
/// The general path (`SeriesPreprocessor` with `.screening`, then rounding) maps the whole
/// slice to Float32, resamples it through a scratch image and rounds the result: three
/// full-size arrays per instance, which on a 512×512 CT slice cost more in page faults than
/// in arithmetic. For the commonest slice (16-bit stored values, the size kept or halved on
/// both axes) `direct` does the same Float32 operations in the same order in one pass, so its
/// values are identical, and allocates only the output.
public enum HUSlice {
    /// Rounded HU of `slice` at `width` × `height`, or nil when the slice does not take the
    /// direct path (the caller then takes `SeriesPreprocessor`).
    public static func direct(_ slice: SliceInput, width: Int, height: Int) -> [Int16]? {
        let columns = slice.columns, rows = slice.rows
        guard columns > 0, rows > 0, slice.pixels.count >= columns * rows else { return nil }
        let halved: Bool
        if width == columns && height == rows {
            halved = false
        } else if width * 2 == columns && height * 2 == rows {
            halved = true
        } else {
            return nil
        }
        let map = IntensityMapping.hu.fused(with: slice.modalityLUT)
        switch slice.pixels {
        case .int16(let stored): return stored.withUnsafeBufferPointer { reduce($0, columns: columns, rows: rows, halved: halved, map) }
        case .uint16(let stored): return stored.withUnsafeBufferPointer { reduce($0, columns: columns, rows: rows, halved: halved, map) }
        default: return nil
        }
    }

    /// `v` rounded half away from zero (as `Float.rounded()`) and clamped to Int16; 0 when not
    /// finite. An integer conversion instead of a libm `roundf` call per voxel: |v| ≤ 32768
    /// after the clamp, so the truncation and the fraction `c − t` are exact.
    @inlinable
    public static func rounded(_ v: Float) -> Int16 {
        guard v.isFinite else { return 0 }
        let c = min(max(v, -32768), 32767)
        let t = Int32(c)
        // 2 × fraction is exact and lies in (−2, 2): truncating it gives +1 from 0.5 up, −1
        // from −0.5 down, else 0, with no data-dependent branch.
        let fraction = c - Float(t)
        return Int16(truncatingIfNeeded: t &+ Int32(2 * fraction))
    }

    @inline(__always)
    static func value<T: BinaryInteger>(_ stored: T, _ f: AffineClamp) -> Float {
        // As `Kernels.mapStored`.
        var v = Float(stored) * f.a + f.b
        v = v < f.lo ? f.lo : v
        v = v > f.hi ? f.hi : v
        return v
    }

    static func reduce<T: BinaryInteger>(_ src: UnsafeBufferPointer<T>, columns: Int, rows: Int, halved: Bool, _ f: AffineClamp) -> [Int16] {
        guard halved else {
            return [Int16](unsafeUninitializedCapacity: columns * rows) { out, count in
                for i in 0..<(columns * rows) { out[i] = rounded(value(src[i], f)) }
                count = columns * rows
            }
        }
        let width = columns / 2, height = rows / 2
        // `Resampler` averages each pair with weight 1/2: horizontally `(0 + a·w) + b·w`, then
        // vertically `h0·w`, plus `h1·w`.
        let w: Float = 0.5
        return [Int16](unsafeUninitializedCapacity: width * height) { out, count in
            for y in 0..<height {
                let upper = src.baseAddress! + 2 * y * columns, lower = upper + columns
                let row = out.baseAddress! + y * width
                for x in 0..<width {
                    let h0 = (0 + value(upper[2 * x], f) * w) + value(upper[2 * x + 1], f) * w
                    let h1 = (0 + value(lower[2 * x], f) * w) + value(lower[2 * x + 1], f) * w
                    var v = h0 * w
                    v += h1 * w
                    row[x] = rounded(v)
                }
            }
            count = width * height
        }
    }
}
