/// Per-component statistics from `ConnectedComponents3D`.
public struct ComponentStats: Sendable, Equatable {
    public var label: Int32
    public var count: Int
    public var sum: Double
    public var maxValue: Float
    public var minX: Int, maxX: Int, minY: Int, maxY: Int, minZ: Int, maxZ: Int
    public var sumX: Double, sumY: Double, sumZ: Double

    public var mean: Double { count > 0 ? sum / Double(count) : 0 }
    public var centroid: (x: Double, y: Double, z: Double) {
        (sumX / Double(count), sumY / Double(count), sumZ / Double(count))
    }
    public var box: BoundingBox { BoundingBox(x0: minX, y0: minY, z0: minZ, x1: maxX, y1: maxY, z1: maxZ) }
}

/// 3D connected-component labelling with buffers sized once for a volume shape: the label
/// volume and the flood-fill stack are reused across calls (no per-voxel allocation).
public struct ConnectedComponents3D: Sendable {
    public let width: Int, height: Int, depth: Int
    public private(set) var labels: [Int32]
    private var stack: [Int32]

    public init(width: Int, height: Int, depth: Int) {
        self.width = width
        self.height = height
        self.depth = depth
        labels = [Int32](repeating: 0, count: width * height * depth)
        stack = [Int32](repeating: 0, count: width * height * depth)
    }

    /// Labels voxels where `mask != 0`. `values` (same size) feed the per-component sums and
    /// maxima. `connectivity` is 6 (faces) or 26 (faces, edges, corners).
    public mutating func label(mask: UnsafeBufferPointer<UInt8>, values: UnsafeBufferPointer<Float>, connectivity: Int = 26) -> [ComponentStats] {
        let w = width, h = height, d = depth, n = w * h * d
        precondition(mask.count >= n && values.count >= n, "mask/values smaller than the volume")
        var comps: [ComponentStats] = []
        var offsets: [(Int, Int, Int)] = []
        for dz in -1...1 { for dy in -1...1 { for dx in -1...1 {
            let m = abs(dx) + abs(dy) + abs(dz)
            if m == 0 || (connectivity == 6 && m > 1) { continue }
            offsets.append((dx, dy, dz))
        } } }
        labels.withUnsafeMutableBufferPointer { lab in
            stack.withUnsafeMutableBufferPointer { st in
                for i in 0..<n { lab[i] = 0 }
                var next: Int32 = 0
                for seed in 0..<n where mask[seed] != 0 && lab[seed] == 0 {
                    next += 1
                    var c = ComponentStats(label: next, count: 0, sum: 0, maxValue: -.greatestFiniteMagnitude,
                                           minX: .max, maxX: .min, minY: .max, maxY: .min, minZ: .max, maxZ: .min,
                                           sumX: 0, sumY: 0, sumZ: 0)
                    var top = 0
                    st[top] = Int32(seed); top += 1
                    lab[seed] = next
                    while top > 0 {
                        top -= 1
                        let i = Int(st[top])
                        let z = i / (w * h), r = i - z * w * h, y = r / w, x = r - y * w
                        let v = values[i]
                        c.count += 1; c.sum += Double(v); if v > c.maxValue { c.maxValue = v }
                        c.sumX += Double(x); c.sumY += Double(y); c.sumZ += Double(z)
                        if x < c.minX { c.minX = x }; if x > c.maxX { c.maxX = x }
                        if y < c.minY { c.minY = y }; if y > c.maxY { c.maxY = y }
                        if z < c.minZ { c.minZ = z }; if z > c.maxZ { c.maxZ = z }
                        for (dx, dy, dz) in offsets {
                            let nx = x + dx, ny = y + dy, nz = z + dz
                            if nx < 0 || ny < 0 || nz < 0 || nx >= w || ny >= h || nz >= d { continue }
                            let j = (nz * h + ny) * w + nx
                            if mask[j] != 0 && lab[j] == 0 {
                                lab[j] = next
                                st[top] = Int32(j); top += 1
                            }
                        }
                    }
                    comps.append(c)
                }
            }
        }
        return comps
    }
}

/// 2D helpers over one slice at a time, with scratch sized once.
public struct SliceOps: Sendable {
    public let width: Int, height: Int
    private var stack: [Int32]
    private var tmp: [Float]
    private var maskTmp: [UInt8]

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
        stack = [Int32](repeating: 0, count: width * height)
        tmp = [Float](repeating: 0, count: width * height)
        maskTmp = [UInt8](repeating: 0, count: width * height)
    }

    /// `reached[i] = 1` for pixels 4-connected to the image border through `passable != 0`.
    public mutating func fillFromBorder(passable: UnsafeBufferPointer<UInt8>, reached: UnsafeMutableBufferPointer<UInt8>) {
        let w = width, h = height
        stack.withUnsafeMutableBufferPointer { st in
            for i in 0..<(w * h) { reached[i] = 0 }
            var top = 0
            func push(_ i: Int) {
                if passable[i] != 0 && reached[i] == 0 { reached[i] = 1; st[top] = Int32(i); top += 1 }
            }
            for x in 0..<w { push(x); push((h - 1) * w + x) }
            for y in 0..<h { push(y * w); push(y * w + w - 1) }
            while top > 0 {
                top -= 1
                let i = Int(st[top]), y = i / w, x = i - y * w
                if x > 0 { push(i - 1) }
                if x < w - 1 { push(i + 1) }
                if y > 0 { push(i - w) }
                if y < h - 1 { push(i + w) }
            }
        }
    }

    /// 3x3 box mean with edge clamping, `src` -> `dst` (may not alias).
    public mutating func boxSmooth3(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>) {
        let w = width, h = height
        tmp.withUnsafeMutableBufferPointer { t in
            for y in 0..<h {
                let r = y * w
                for x in 0..<w {
                    let a = src[r + max(0, x - 1)], b = src[r + x], c = src[r + min(w - 1, x + 1)]
                    t[r + x] = a + b + c
                }
            }
            let third: Float = 1.0 / 9.0
            for y in 0..<h {
                let up = max(0, y - 1) * w, mid = y * w, dn = min(h - 1, y + 1) * w
                for x in 0..<w { dst[mid + x] = (t[up + x] + t[mid + x] + t[dn + x]) * third }
            }
        }
    }

    /// Erodes a binary mask in place by `radius` 4-neighbour steps (pixels outside the image count as background).
    public mutating func erode(_ mask: UnsafeMutableBufferPointer<UInt8>, radius: Int) {
        let w = width, h = height
        guard radius > 0 else { return }
        maskTmp.withUnsafeMutableBufferPointer { t in
            for _ in 0..<radius {
                for i in 0..<(w * h) { t[i] = mask[i] }
                for y in 0..<h {
                    for x in 0..<w {
                        let i = y * w + x
                        if t[i] == 0 { continue }
                        if x == 0 || y == 0 || x == w - 1 || y == h - 1 || t[i - 1] == 0 || t[i + 1] == 0 || t[i - w] == 0 || t[i + w] == 0 {
                            mask[i] = 0
                        }
                    }
                }
            }
        }
    }
}

/// Percentiles of HU values over a fixed range, by 1-unit histogram bins.
public struct HUHistogram: Sendable {
    public let lo: Int, hi: Int
    private(set) var bins: [Int]
    public private(set) var total = 0
    public private(set) var below = 0
    public private(set) var above = 0

    public init(lo: Int = -1500, hi: Int = 4000) {
        self.lo = lo
        self.hi = hi
        bins = [Int](repeating: 0, count: hi - lo + 1)
    }

    public mutating func add(_ hu: Double) {
        total += 1
        if hu < Double(lo) { below += 1; return }
        if hu > Double(hi) { above += 1; return }
        bins[Int(hu.rounded()) - lo] += 1
    }

    /// Percentile (0...1) over the values inside [lo, hi]; nil when none.
    public func percentile(_ p: Double) -> Double? {
        let inside = total - below - above
        guard inside > 0 else { return nil }
        let target = Int((p * Double(inside - 1)).rounded())
        var acc = 0
        for (i, c) in bins.enumerated() {
            acc += c
            if acc > target { return Double(i + lo) }
        }
        return Double(hi)
    }
}
