import CZlib

/// Minimal PNG writer for 8-bit greyscale and RGB images (colour types 0 and 2, bit depth 8,
/// no interlace). Each row gets the filter (None, Sub, Up, Average, Paeth) with the smallest
/// sum of absolute residuals; the filtered rows are deflated by zlib into a single IDAT chunk.
public enum PNGEncoder {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func encodeGray8(width: Int, height: Int, pixels: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        try encode(width: width, height: height, pixels: pixels, channels: 1, level: level)
    }

    /// `pixels`: R G B interleaved, row by row.
    public static func encodeRGB8(width: Int, height: Int, pixels: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        try encode(width: width, height: height, pixels: pixels, channels: 3, level: level)
    }

    static func encode(width: Int, height: Int, pixels: [UInt8], channels: Int, level: Int32) throws -> [UInt8] {
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24 else {
            throw ImagingError.invalidParameter("PNG size must be positive")
        }
        let rowBytes = width * channels
        guard pixels.count == rowBytes * height else {
            throw ImagingError.sizeMismatch("PNG pixels", expected: rowBytes * height, got: pixels.count)
        }
        var filtered = [UInt8](repeating: 0, count: (rowBytes + 1) * height)
        var candidate = [UInt8](repeating: 0, count: rowBytes)
        var best = [UInt8](repeating: 0, count: rowBytes)
        pixels.withUnsafeBufferPointer { px in
            for y in 0..<height {
                let cur = px.baseAddress! + y * rowBytes
                let prev: UnsafePointer<UInt8>? = y > 0 ? px.baseAddress! + (y - 1) * rowBytes : nil
                var bestScore = Int.max, bestType: UInt8 = 0
                for type in UInt8(0)...4 {
                    var score = 0
                    // Filters predict from the same channel of the pixel to the left (`channels` bytes back).
                    for x in 0..<rowBytes {
                        let a = x >= channels ? Int(cur[x - channels]) : 0
                        let b = prev.map { Int($0[x]) } ?? 0
                        let c = (x >= channels ? prev.map { Int($0[x - channels]) } : nil) ?? 0
                        let predictor: Int
                        switch type {
                        case 0: predictor = 0
                        case 1: predictor = a
                        case 2: predictor = b
                        case 3: predictor = (a + b) / 2
                        default: predictor = paeth(a, b, c)
                        }
                        let r = UInt8(truncatingIfNeeded: Int(cur[x]) - predictor)
                        candidate[x] = r
                        score += r < 128 ? Int(r) : 256 - Int(r)
                    }
                    if score < bestScore { bestScore = score; bestType = type; swap(&best, &candidate) }
                }
                filtered[y * (rowBytes + 1)] = bestType
                for x in 0..<rowBytes { filtered[y * (rowBytes + 1) + 1 + x] = best[x] }
            }
        }

        var compressedLength = compressBound(uLong(filtered.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedLength))
        let status = compressed.withUnsafeMutableBufferPointer { dst in
            filtered.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress, &compressedLength, src.baseAddress, uLong(src.count), level)
            }
        }
        guard status == Z_OK else { throw ImagingError.png("zlib compress2 failed with status \(status)") }
        compressed.removeSubrange(Int(compressedLength)...)

        var out = signature
        var ihdr = [UInt8]()
        appendBE32(&ihdr, UInt32(width))
        appendBE32(&ihdr, UInt32(height))
        ihdr += [8, channels == 3 ? 2 : 0, 0, 0, 0] // bit depth 8, greyscale or RGB, deflate, adaptive filtering, no interlace
        appendChunk(&out, "IHDR", ihdr)
        appendChunk(&out, "IDAT", compressed)
        appendChunk(&out, "IEND", [])
        return out
    }

    @inline(__always)
    static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    static func appendBE32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    /// CRC-32 (zlib's) of `bytes`, continuing from `crc`.
    public static func crc(_ bytes: [UInt8], start: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { b in UInt32(crc32(uLong(start), b.baseAddress, uInt(b.count))) }
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendBE32(&out, UInt32(data.count))
        let typeBytes = Array(type.utf8)
        out += typeBytes
        out += data
        appendBE32(&out, crc(data, start: crc(typeBytes)))
    }
}
