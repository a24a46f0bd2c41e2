/// Voxel spacing in millimetres: `x` between columns, `y` between rows, `z` between slices
/// (nil when the source does not say).
public struct Spacing: Sendable, Equatable, Codable {
    public var x: Double?
    public var y: Double?
    public var z: Double?

    public init(x: Double?, y: Double?, z: Double?) {
        self.x = x
        self.y = y
        self.z = z
    }
}

/// A dense Float32 volume, slice-major (`depth` slices of `height` rows of `width` columns).
public struct Volume: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var depth: Int
    public var spacing: Spacing
    public var voxels: [Float]

    public init(width: Int, height: Int, depth: Int, spacing: Spacing, voxels: [Float]) throws {
        guard width > 0, height > 0, depth >= 0 else { throw ImagingError.invalidParameter("volume dimensions must be positive") }
        guard voxels.count == width * height * depth else {
            throw ImagingError.sizeMismatch("volume", expected: width * height * depth, got: voxels.count)
        }
        self.width = width
        self.height = height
        self.depth = depth
        self.spacing = spacing
        self.voxels = voxels
    }

    /// A zero-filled volume.
    public init(width: Int, height: Int, depth: Int, spacing: Spacing, fill: Float = 0) {
        self.width = width
        self.height = height
        self.depth = depth
        self.spacing = spacing
        self.voxels = [Float](repeating: fill, count: width * height * depth)
    }

    public var sliceCount: Int { width * height }
    /// Shape as (depth, height, width), the order the raw tensor is written in.
    public var shape: [Int] { [depth, height, width] }

    @inline(__always)
    public func index(x: Int, y: Int, z: Int) -> Int { (z * height + y) * width + x }

    public subscript(x: Int, y: Int, z: Int) -> Float {
        get { voxels[index(x: x, y: y, z: z)] }
        set { voxels[index(x: x, y: y, z: z)] = newValue }
    }

    /// One slice copied out (not for hot paths).
    public func slice(_ z: Int) -> [Float] { Array(voxels[(z * sliceCount)..<((z + 1) * sliceCount)]) }

    /// The voxels as raw little-endian Float32 bytes.
    public func rawLittleEndianBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: voxels.count * 4)
        out.withUnsafeMutableBufferPointer { o in
            voxels.withUnsafeBufferPointer { v in
                for i in 0..<v.count {
                    let bits = v[i].bitPattern.littleEndian
                    o[4 * i] = UInt8(truncatingIfNeeded: bits)
                    o[4 * i + 1] = UInt8(truncatingIfNeeded: bits >> 8)
                    o[4 * i + 2] = UInt8(truncatingIfNeeded: bits >> 16)
                    o[4 * i + 3] = UInt8(truncatingIfNeeded: bits >> 24)
                }
            }
        }
        return out
    }
}
