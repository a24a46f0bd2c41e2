/// Separable 2D resampler from a fixed source size to a fixed target size.
///
/// Per axis: area averaging when the axis shrinks (each output sample is the mean of the
/// source samples its footprint covers, fractional overlaps weighted), bilinear with
/// half-pixel centres when it grows or stays (equal size is the identity). Tables and the
/// intermediate row buffer are built once in `init`; `resample` allocates nothing, so one
/// resampler serves every slice of a series.
public struct Resampler: Sendable {
    public let sourceWidth: Int, sourceHeight: Int
    public let targetWidth: Int, targetHeight: Int

    struct Axis: Sendable {
        var start: [Int32]   // per output: first source index
        var count: [Int32]   // per output: number of taps
        var offset: [Int32]  // per output: first weight index
        var weights: [Float]
    }

    private let xAxis: Axis
    private let yAxis: Axis
    /// Source columns per target column when the width shrinks by a whole factor: every
    /// output then averages the same number of taps with the same weight, and the
    /// horizontal pass needs no tables (same arithmetic, same order, same result).
    private let xFactor: Int?
    private var scratch: [Float]

    public init(sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int) throws {
        guard sourceWidth > 0, sourceHeight > 0, targetWidth > 0, targetHeight > 0 else {
            throw ImagingError.invalidParameter("resample sizes must be positive")
        }
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.targetWidth = targetWidth
        self.targetHeight = targetHeight
        let x = Resampler.axis(source: sourceWidth, target: targetWidth)
        xAxis = x
        yAxis = Resampler.axis(source: sourceHeight, target: targetHeight)
        let f = sourceWidth / targetWidth
        xFactor = targetWidth < sourceWidth && sourceWidth % targetWidth == 0
            && x.count.allSatisfy({ Int($0) == f }) && x.weights.allSatisfy({ $0 == x.weights[0] }) ? f : nil
        scratch = [Float](repeating: 0, count: sourceHeight * targetWidth)
    }

    static func axis(source n: Int, target m: Int) -> Axis {
        var start = [Int32](), count = [Int32](), offset = [Int32](), weights = [Float]()
        start.reserveCapacity(m); count.reserveCapacity(m); offset.reserveCapacity(m)
        let s = Double(n) / Double(m)
        if m < n {
            // Area averaging: output o covers source [o*s, (o+1)*s).
            for o in 0..<m {
                let lo = Double(o) * s, hi = Double(o + 1) * s
                let first = Int(lo.rounded(.down)), last = min(n - 1, Int((hi - 1e-9).rounded(.down)))
                start.append(Int32(first)); offset.append(Int32(weights.count)); count.append(Int32(last - first + 1))
                for i in first...last {
                    let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
                    weights.append(Float(overlap / s))
                }
            }
        } else {
            // Bilinear, half-pixel centres, edge clamped.
            for o in 0..<m {
                var x = (Double(o) + 0.5) * s - 0.5
                x = min(max(x, 0), Double(n - 1))
                let i0 = Int(x.rounded(.down))
                let f = x - Double(i0)
                start.append(Int32(i0)); offset.append(Int32(weights.count))
                if f > 0 && i0 + 1 < n {
                    count.append(2); weights.append(Float(1 - f)); weights.append(Float(f))
                } else {
                    count.append(1); weights.append(1)
                }
            }
        }
        return Axis(start: start, count: count, offset: offset, weights: weights)
    }

    /// `src` is sourceHeight x sourceWidth row-major, `dst` targetHeight x targetWidth.
    public mutating func resample(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>) throws {
        guard src.count >= sourceWidth * sourceHeight else {
            throw ImagingError.sizeMismatch("resample source", expected: sourceWidth * sourceHeight, got: src.count)
        }
        guard dst.count >= targetWidth * targetHeight else {
            throw ImagingError.sizeMismatch("resample target", expected: targetWidth * targetHeight, got: dst.count)
        }
        let sw = sourceWidth, sh = sourceHeight, tw = targetWidth, th = targetHeight
        let xa = xAxis, ya = yAxis
        scratch.withUnsafeMutableBufferPointer { tmp in
            // Horizontal pass: sh rows of sw -> sh rows of tw.
            if let f = xFactor, let s = src.baseAddress, let t = tmp.baseAddress {
                let w = xa.weights[0]
                for y in 0..<sh {
                    let row = s + y * sw, out = t + y * tw
                    if f == 2 {
                        for o in 0..<tw { out[o] = (0 + row[2 * o] * w) + row[2 * o + 1] * w }
                    } else {
                        for o in 0..<tw {
                            var acc: Float = 0
                            for k in 0..<f { acc += row[o * f + k] * w }
                            out[o] = acc
                        }
                    }
                }
            } else {
            xa.start.withUnsafeBufferPointer { xs in
            xa.count.withUnsafeBufferPointer { xc in
            xa.offset.withUnsafeBufferPointer { xo in
            xa.weights.withUnsafeBufferPointer { xw in
                for y in 0..<sh {
                    let row = y * sw, out = y * tw
                    for o in 0..<tw {
                        let s0 = Int(xs[o]), c = Int(xc[o]), w0 = Int(xo[o])
                        var acc: Float = 0
                        for k in 0..<c { acc += src[row + s0 + k] * xw[w0 + k] }
                        tmp[out + o] = acc
                    }
                }
            }}}}
            }
            // Vertical pass: th output rows, each a weighted sum of tmp rows.
            ya.start.withUnsafeBufferPointer { ys in
            ya.count.withUnsafeBufferPointer { yc in
            ya.offset.withUnsafeBufferPointer { yo in
            ya.weights.withUnsafeBufferPointer { yw in
                let d = dst.baseAddress!, t = tmp.baseAddress!
                for o in 0..<th {
                    let s0 = Int(ys[o]), c = Int(yc[o]), w0 = Int(yo[o])
                    let outRow = d + o * tw
                    let w = yw[w0]
                    let first = t + s0 * tw
                    for x in 0..<tw { outRow[x] = first[x] * w }
                    if c > 1 {
                        for k in 1..<c {
                            let wk = yw[w0 + k]
                            let r = t + (s0 + k) * tw
                            for x in 0..<tw { outRow[x] += r[x] * wk }
                        }
                    }
                }
            }}}}
        }
    }
}
