import DICOMCodecs
import Foundation

/// One entry of Resources/jpeg/expected.json (written by scripts/make-jpeg-fixtures.sh from
/// pydicom 3.0.2 + pylibjpeg-libjpeg's decoding of each stream).
struct JPEGFixture: Decodable, Sendable, CustomStringConvertible {
    let name: String
    let source: String
    let transfer_syntax: String
    let lossy: Bool
    let rows: Int
    let columns: Int
    let samples_per_pixel: Int
    let bits_allocated: Int
    let bits_stored: Int
    let is_signed: Bool
    let photometric_interpretation: String
    let expect_error: String?
    let shape: [Int]?
    let dtype: String?
    let sha256: String?
    let min: Double?
    let max: Double?
    let mean: Double?
    let reference: String?

    var description: String { name }

    var descriptor: FrameDescriptor {
        FrameDescriptor(rows: rows, columns: columns, samplesPerPixel: samples_per_pixel, bitsAllocated: bits_allocated,
                        bitsStored: bits_stored, isSigned: is_signed, photometricInterpretation: photometric_interpretation)
    }

    var stream: [UInt8] { JPEGFixtures.bytes(name + ".jpg") }

    /// The reference decoder's array (lossy fixtures), little-endian.
    var referenceArray: [UInt8]? {
        guard let reference else { return nil }
        return try? Inflate.zlib(JPEGFixtures.bytes(reference))
    }
}

enum JPEGFixtures {
    /// The copied Resources/jpeg folder (Foundation's resourceURL differs between platforms
    /// on whether it already ends in "Resources").
    static let directory: URL = {
        let candidates = [Bundle.module.bundleURL.appendingPathComponent("Resources/jpeg"),
                          Bundle.module.resourceURL?.appendingPathComponent("jpeg"),
                          Bundle.module.resourceURL?.appendingPathComponent("Resources/jpeg")].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("expected.json").path) }
            ?? candidates[0]
    }()

    static let all: [JPEGFixture] = {
        struct File: Decodable { let fixtures: [JPEGFixture] }
        let data = try! Data(contentsOf: directory.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode(File.self, from: data).fixtures
    }()

    static func named(_ name: String) -> JPEGFixture { all.first { $0.name == name }! }

    static func bytes(_ file: String) -> [UInt8] {
        [UInt8](try! Data(contentsOf: directory.appendingPathComponent(file)))
    }
}

/// Decodes `stream` into a fresh frame buffer.
func decodeJPEG(_ stream: [UInt8], _ descriptor: FrameDescriptor, codec: SwiftJPEGCodec = SwiftJPEGCodec())
    throws -> (pixels: [UInt8], colour: DecodedColour) {
    var out = [UInt8](repeating: 0, count: descriptor.frameBytes)
    let colour = try stream.withUnsafeBytes { input in
        try out.withUnsafeMutableBytes { output in
            try codec.decode(input, into: output, descriptor: descriptor)
        }
    }
    return (out, colour)
}

/// Min, max and mean of a little-endian sample buffer as numpy reads it with `dtype`.
func sampleStatistics(_ bytes: [UInt8], dtype: String) -> (min: Double, max: Double, mean: Double) {
    let values = samples(bytes, dtype: dtype)
    var lo = Int.max, hi = Int.min, sum = 0
    for v in values { lo = Swift.min(lo, v); hi = Swift.max(hi, v); sum += v }
    return (Double(lo), Double(hi), Double(sum) / Double(values.count))
}

func samples(_ bytes: [UInt8], dtype: String) -> [Int] {
    switch dtype {
    case "uint8": return bytes.map { Int($0) }
    case "int8": return bytes.map { Int(Int8(bitPattern: $0)) }
    case "uint16": return stride(from: 0, to: bytes.count, by: 2).map { Int(UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
    case "int16": return stride(from: 0, to: bytes.count, by: 2).map { Int(Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8)) }
    default: fatalError("dtype \(dtype)")
    }
}

/// SHA-256 (FIPS 180-4), for comparing decoded frames with the reference's digests
/// without a crypto dependency in this test target.
enum SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var data = message
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        let bits = UInt64(message.count) * 8
        for i in (0..<8).reversed() { data.append(UInt8(truncatingIfNeeded: bits >> (UInt64(i) * 8))) }
        var w = [UInt32](repeating: 0, count: 64)
        @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for t in 0..<16 {
                let i = chunk + t * 4
                w[t] = UInt32(data[i]) << 24 | UInt32(data[i + 1]) << 16 | UInt32(data[i + 2]) << 8 | UInt32(data[i + 3])
            }
            for t in 16..<64 {
                let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
            for t in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[t] &+ w[t]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }
}

/// A small zlib (RFC 1950/1951) decompressor for the reference arrays of the lossy
/// fixtures (this test target has no zlib dependency).
enum Inflate {
    struct Failure: Error {}

    private struct Bits {
        let data: [UInt8]
        var position = 0
        var bitBuffer = 0
        var bitCount = 0
        mutating func bits(_ n: Int) throws -> Int {
            while bitCount < n {
                guard position < data.count else { throw Failure() }
                bitBuffer |= Int(data[position]) << bitCount
                position += 1
                bitCount += 8
            }
            let v = bitBuffer & ((1 << n) - 1)
            bitBuffer >>= n
            bitCount -= n
            return v
        }
    }

    private struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int] = []
        init(lengths: [Int]) {
            for l in lengths { counts[l] += 1 }
            counts[0] = 0
            var offsets = [Int](repeating: 0, count: 16)
            for l in 1..<16 { offsets[l] = offsets[l - 1] + counts[l - 1] }
            symbols = [Int](repeating: 0, count: lengths.count)
            for (s, l) in lengths.enumerated() where l != 0 {
                symbols[offsets[l]] = s
                offsets[l] += 1
            }
        }
        func decode(_ b: inout Bits) throws -> Int {
            var code = 0, first = 0, index = 0
            for length in 1..<16 {
                code |= try b.bits(1)
                let count = counts[length]
                if code - first < count { return symbols[index + code - first] }
                index += count
                first = (first + count) << 1
                code <<= 1
            }
            throw Failure()
        }
    }

    private static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                                       2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    private static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    static func zlib(_ data: [UInt8]) throws -> [UInt8] {
        guard data.count > 6, data[0] & 0x0F == 8 else { throw Failure() }
        var b = Bits(data: data, position: 2)
        var out: [UInt8] = []
        var final = 0
        repeat {
            final = try b.bits(1)
            switch try b.bits(2) {
            case 0:
                b.bitBuffer = 0
                b.bitCount = 0
                guard b.position + 4 <= data.count else { throw Failure() }
                let length = Int(data[b.position]) | Int(data[b.position + 1]) << 8
                b.position += 4
                guard b.position + length <= data.count else { throw Failure() }
                out.append(contentsOf: data[b.position..<(b.position + length)])
                b.position += length
            case 1:
                let lit = Huffman(lengths: (0..<288).map { $0 < 144 ? 8 : ($0 < 256 ? 9 : ($0 < 280 ? 7 : 8)) })
                let dist = Huffman(lengths: [Int](repeating: 5, count: 30))
                try inflateBlock(&b, &out, lit, dist)
            case 2:
                let nlen = try b.bits(5) + 257, ndist = try b.bits(5) + 1, ncode = try b.bits(4) + 4
                let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
                var codeLengths = [Int](repeating: 0, count: 19)
                for i in 0..<ncode { codeLengths[order[i]] = try b.bits(3) }
                let lencode = Huffman(lengths: codeLengths)
                var lengths: [Int] = []
                while lengths.count < nlen + ndist {
                    let sym = try lencode.decode(&b)
                    switch sym {
                    case 0..<16: lengths.append(sym)
                    case 16:
                        guard let last = lengths.last else { throw Failure() }
                        lengths += [Int](repeating: last, count: 3 + (try b.bits(2)))
                    case 17: lengths += [Int](repeating: 0, count: 3 + (try b.bits(3)))
                    default: lengths += [Int](repeating: 0, count: 11 + (try b.bits(7)))
                    }
                }
                try inflateBlock(&b, &out, Huffman(lengths: Array(lengths[0..<nlen])), Huffman(lengths: Array(lengths[nlen...])))
            default:
                throw Failure()
            }
        } while final == 0
        return out
    }

    private static func inflateBlock(_ b: inout Bits, _ out: inout [UInt8], _ lit: Huffman, _ dist: Huffman) throws {
        while true {
            let sym = try lit.decode(&b)
            if sym < 256 { out.append(UInt8(sym)); continue }
            if sym == 256 { return }
            let i = sym - 257
            guard i < 29 else { throw Failure() }
            let length = lengthBase[i] + (try b.bits(lengthExtra[i]))
            let d = try dist.decode(&b)
            guard d < 30 else { throw Failure() }
            let distance = distanceBase[d] + (try b.bits(distanceExtra[d]))
            guard distance <= out.count else { throw Failure() }
            let start = out.count - distance
            for k in 0..<length { out.append(out[start + k]) }
        }
    }
}
