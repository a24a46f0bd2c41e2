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
        // Finite slope and intercept of sane size keep every value finite (|stored| ≤ 65535),
        // so the loops need no per-voxel check for NaN or infinity.
        guard map.a.isFinite, map.b.isFinite, abs(map.a) <= 1e30, abs(map.b) <= 1e30 else { return nil }
        switch slice.pixels {
        case .int16(let stored): return stored.withUnsafeBufferPointer { reduce($0, columns: columns, rows: rows, halved: halved, map) }
        case .uint16(let stored): return stored.withUnsafeBufferPointer { reduce($0, columns: columns, rows: rows, halved: halved, map) }
        default: return nil
        }
    }

    /// `v` rounded half away from zero (as `Float.rounded()`) and clamped to Int16; 0 when not
    /// finite.
    @inlinable
    public static func rounded(_ v: Float) -> Int16 {
        v.isFinite ? roundedFinite(v) : 0
    }

    /// `rounded` for a finite `v`, with no branch the compiler cannot turn into a select: an
    /// integer conversion instead of a libm `roundf` call per voxel. |v| ≤ 32768 after the
    /// clamp, so the truncation and the fraction `c − t` are exact; 2 × fraction lies in
    /// (−2, 2) and truncates to +1 from 0.5 up, −1 from −0.5 down, else 0.
    @inlinable @inline(__always)
    public static func roundedFinite(_ v: Float) -> Int16 {
        var c = v < -32768 ? -32768 : v
        c = c > 32767 ? 32767 : c
        let t = Int32(c)
        let fraction = c - Float(t)
        return Int16(truncatingIfNeeded: t &+ Int32(2 * fraction))
    }

    @inline(__always)
    static func value<T: FixedWidthInteger>(_ stored: T, _ f: AffineClamp) -> Float {
        // As `Kernels.mapStored`.
        var v = Float(Int32(truncatingIfNeeded: stored)) * f.a + f.b
        v = v < f.lo ? f.lo : v
        v = v > f.hi ? f.hi : v
        return v
    }

    @_specialize(where T == Int16)
    @_specialize(where T == UInt16)
    static func reduce<T: FixedWidthInteger>(_ src: UnsafeBufferPointer<T>, columns: Int, rows: Int, halved: Bool, _ f: AffineClamp) -> [Int16] {
        guard let base = src.baseAddress else { return [] }
        guard halved else {
            return [Int16](unsafeUninitializedCapacity: columns * rows) { out, count in
                for i in 0..<(columns * rows) { out[i] = roundedFinite(value(base[i], f)) }
                count = columns * rows
            }
        }
        let width = columns / 2, height = rows / 2
        // `Resampler` averages each pair with weight 1/2: horizontally `(0 + a·w) + b·w` into
        // two rows, then vertically `h0·w` plus `h1·w`; the same here, row pair by row pair.
        let w: Float = 0.5
        return [Int16](unsafeUninitializedCapacity: width * height) { out, count in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * width) { pair in
                let upperSums = pair.baseAddress!, lowerSums = upperSums + width
                for y in 0..<height {
                    let upper = base + 2 * y * columns, lower = upper + columns
                    for x in 0..<width {
                        upperSums[x] = (0 + value(upper[2 * x], f) * w) + value(upper[2 * x + 1], f) * w
                    }
                    for x in 0..<width {
                        lowerSums[x] = (0 + value(lower[2 * x], f) * w) + value(lower[2 * x + 1], f) * w
                    }
                    let row = out.baseAddress! + y * width
                    for x in 0..<width {
                        var v = upperSums[x] * w
                        v += lowerSums[x] * w
                        row[x] = roundedFinite(v)
                    }
                }
            }
            count = width * height
        }
    }
}
