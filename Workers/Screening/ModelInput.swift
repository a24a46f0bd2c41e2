import Imaging

/// What a slice classifier takes (from a model manifest's "input" section).
public struct ModelInputSpec: Sendable, Codable, Equatable {
    public var tensor: String          // ONNX input name, e.g. "slices"
    public var modality: String        // "CT"
    public var bodyParts: [String]     // ["HEAD","BRAIN","SKULL"]; empty = any
    public var windowHU: [Double]      // [lo, hi]: HU lo -> 0, hi -> 1, clipped
    public var spacingMM: Double       // in-plane pixel spacing the model expects
    public var size: [Int]             // [height, width]
    public var channels: Int           // odd: adjacent slices stacked as channels, centre slice in the middle

    public init(tensor: String = "slices", modality: String = "CT", bodyParts: [String] = [], windowHU: [Double], spacingMM: Double,
                size: [Int], channels: Int) {
        self.tensor = tensor
        self.modality = modality
        self.bodyParts = bodyParts
        self.windowHU = windowHU
        self.spacingMM = spacingMM
        self.size = size
        self.channels = channels
    }

    /// Throws `screening.config` when the spec cannot describe a tensor.
    public func validate() throws {
        guard windowHU.count == 2, windowHU.allSatisfy(\.isFinite), windowHU[0] < windowHU[1] else {
            throw ScreeningError.config("model input windowHU must be [lo, hi] with lo < hi")
        }
        guard spacingMM.isFinite, spacingMM > 0 else { throw ScreeningError.config("model input spacingMM must be > 0") }
        guard size.count == 2, size.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
            throw ScreeningError.config("model input size must be [height, width], each 1...4096")
        }
        guard channels >= 1, channels % 2 == 1, channels <= 63 else {
            throw ScreeningError.config("model input channels must be odd, 1...63")
        }
    }
}

public enum ModelInputTensor {
    /// NCHW float32, one item per slice of the series (sorted order), N = depth.
    ///
    /// Each slice is resampled bilinearly from its pixel spacing (1 mm if unknown) to
    /// `spec.spacingMM` with the image centre on the output centre, windowed (HU `lo` -> 0,
    /// `hi` -> 1, clipped); samples outside the source read as `lo`. Channel c of item z is
    /// slice clamp(z + c - channels/2, 0, depth - 1).
    public static func slices(_ series: PreprocessedSeries, spec: ModelInputSpec) throws -> [Float] {
        try spec.validate()
        let v = series.volume
        let m = series.mapping
        guard m.scale != 0, m.scale.isFinite, m.offset.isFinite else { throw ScreeningError.invalidInput("series intensity mapping is not invertible") }
        let outH = spec.size[0], outW = spec.size[1], ch = spec.channels, depth = v.depth
        guard depth > 0 else { return [] }
        let srcW = v.width, srcH = v.height
        let sx = positive(v.spacing.x) ?? 1, sy = positive(v.spacing.y) ?? 1

        // tensor -> HU is (t - offset) / scale; windowing is linear, so fold both into one affine
        // step applied after interpolation (interpolating tensor values equals interpolating HU).
        let lo = spec.windowHU[0], hi = spec.windowHU[1]
        let a = Float(1 / (m.scale * (hi - lo)))
        let b = Float((-m.offset / m.scale - lo) / (hi - lo))

        let cols = axis(outCount: outW, outSpacing: spec.spacingMM, srcCount: srcW, srcSpacing: sx)
        let rows = axis(outCount: outH, outSpacing: spec.spacingMM, srcCount: srcH, srcSpacing: sy)

        // One windowed, resampled plane per source slice, then channel stacking by copies.
        let plane = outH * outW
        var planes = [Float](repeating: 0, count: depth * plane)
        planes.withUnsafeMutableBufferPointer { out in
            v.voxels.withUnsafeBufferPointer { src in
                cols.i0.withUnsafeBufferPointer { ci in
                cols.w.withUnsafeBufferPointer { cw in
                cols.ok.withUnsafeBufferPointer { cok in
                rows.i0.withUnsafeBufferPointer { ri in
                rows.w.withUnsafeBufferPointer { rw in
                rows.ok.withUnsafeBufferPointer { rok in
                    for z in 0..<depth {
                        let s = src.baseAddress! + z * srcW * srcH
                        let o = out.baseAddress! + z * plane
                        for y in 0..<outH {
                            let orow = o + y * outW
                            guard rok[y] else {
                                for x in 0..<outW { orow[x] = 0 }
                                continue
                            }
                            let r0 = s + ri[y] * srcW
                            let r1 = ri[y] + 1 < srcH ? r0 + srcW : r0
                            let wy = rw[y]
                            for x in 0..<outW {
                                guard cok[x] else { orow[x] = 0; continue }
                                let i = ci[x], j = i + 1 < srcW ? i + 1 : i
                                let wx = cw[x]
                                let top = r0[i] + (r0[j] - r0[i]) * wx
                                let bot = r1[i] + (r1[j] - r1[i]) * wx
                                let t = top + (bot - top) * wy
                                orow[x] = min(1, max(0, t * a + b))
                            }
                        }
                    }
                } } } } } }
            }
        }
        if ch == 1 { return planes }

        var result = [Float](repeating: 0, count: depth * ch * plane)
        result.withUnsafeMutableBufferPointer { out in
            planes.withUnsafeBufferPointer { p in
                for z in 0..<depth {
                    for c in 0..<ch {
                        let k = min(depth - 1, max(0, z + c - ch / 2))
                        (out.baseAddress! + (z * ch + c) * plane).update(from: p.baseAddress! + k * plane, count: plane)
                    }
                }
            }
        }
        return result
    }

    private static func positive(_ x: Double?) -> Double? {
        guard let x, x > 0, x.isFinite else { return nil }
        return x
    }

    /// Source index, weight of the next sample and in-bounds flag for each output position
    /// along one axis (computed once per call, not per pixel).
    private static func axis(outCount: Int, outSpacing: Double, srcCount: Int, srcSpacing: Double) -> (i0: [Int], w: [Float], ok: [Bool]) {
        var i0 = [Int](repeating: 0, count: outCount), w = [Float](repeating: 0, count: outCount), ok = [Bool](repeating: false, count: outCount)
        let oc = Double(outCount - 1) / 2, sc = Double(srcCount - 1) / 2
        let ratio = outSpacing / srcSpacing
        for k in 0..<outCount {
            let p = (Double(k) - oc) * ratio + sc
            // A hair of slack so exact edge positions are not lost to rounding.
            guard p >= -1e-6, p <= Double(srcCount - 1) + 1e-6 else { continue }
            let q = min(max(p, 0), Double(srcCount - 1))
            let f = q.rounded(.down)
            i0[k] = Int(f)
            w[k] = Float(q - f)
            ok[k] = true
        }
        return (i0, w, ok)
    }
}
