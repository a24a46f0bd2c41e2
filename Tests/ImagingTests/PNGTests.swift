import CZlib
import Testing
@testable import Imaging

/// Independent PNG reader for the tests: chunk walk, CRC check, inflate, unfilter.
struct DecodedPNG {
    var width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = -1
    var pixels: [UInt8] = []
    var chunkTypes: [String] = []
}

func be32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]) }

func decodePNG(_ bytes: [UInt8]) throws -> DecodedPNG {
    struct Bad: Error { let why: String }
    guard Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { throw Bad(why: "signature") }
    var png = DecodedPNG()
    var idat: [UInt8] = []
    var i = 8
    while i + 12 <= bytes.count {
        let len = Int(be32(bytes, i))
        let type = Array(bytes[(i + 4)..<(i + 8)])
        let data = Array(bytes[(i + 8)..<(i + 8 + len)])
        let stored = be32(bytes, i + 8 + len)
        let computed = UInt32(crc32(crc32(0, type, 4), data, uInt(len)))
        guard stored == computed else { throw Bad(why: "crc") }
        let name = String(decoding: type, as: UTF8.self)
        png.chunkTypes.append(name)
        if name == "IHDR" {
            png.width = Int(be32(data, 0)); png.height = Int(be32(data, 4))
            png.bitDepth = Int(data[8]); png.colorType = Int(data[9]); png.interlace = Int(data[12])
        } else if name == "IDAT" { idat += data }
        i += 12 + len
    }
    guard i == bytes.count else { throw Bad(why: "trailing bytes") }
    let stride = png.width + 1
    var raw = [UInt8](repeating: 0, count: stride * png.height)
    var rawLen = uLongf(raw.count)
    let st = uncompress(&raw, &rawLen, idat, uLong(idat.count))
    guard st == Z_OK, Int(rawLen) == raw.count else { throw Bad(why: "inflate") }
    var out = [UInt8](repeating: 0, count: png.width * png.height)
    for y in 0..<png.height {
        let f = raw[y * stride]
        for x in 0..<png.width {
            let r = Int(raw[y * stride + 1 + x])
            let a = x > 0 ? Int(out[y * png.width + x - 1]) : 0
            let b = y > 0 ? Int(out[(y - 1) * png.width + x]) : 0
            let c = x > 0 && y > 0 ? Int(out[(y - 1) * png.width + x - 1]) : 0
            let pred: Int
            switch f {
            case 0: pred = 0
            case 1: pred = a
            case 2: pred = b
            case 3: pred = (a + b) / 2
            case 4:
                let p = a + b - c
                let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c)
            default: throw Bad(why: "filter")
            }
            out[y * png.width + x] = UInt8(truncatingIfNeeded: r + pred)
        }
    }
    png.pixels = out
    return png
}

@Suite struct PNGTests {
    @Test func roundTripGradientAndNoise() throws {
        let w = 37, h = 23
        var px = [UInt8](repeating: 0, count: w * h)
        var state: UInt32 = 12345
        for y in 0..<h { for x in 0..<w {
            state = state &* 1664525 &+ 1013904223
            px[y * w + x] = y < 10 ? UInt8((x * 7 + y * 3) & 255) : UInt8(truncatingIfNeeded: state >> 24)
        } }
        let bytes = try PNGEncoder.encodeGray8(width: w, height: h, pixels: px)
        #expect(Array(bytes.prefix(8)) == PNGEncoder.signature)
        let png = try decodePNG(bytes)
        #expect(png.chunkTypes == ["IHDR", "IDAT", "IEND"])
        #expect(png.width == w && png.height == h)
        #expect(png.bitDepth == 8 && png.colorType == 0 && png.interlace == 0)
        #expect(png.pixels == px)
    }

    @Test func corruptedCRCIsDetectedByReader() throws {
        var bytes = try PNGEncoder.encodeGray8(width: 2, height: 2, pixels: [0, 255, 128, 7])
        bytes[20] ^= 0xFF // inside IHDR data
        #expect(throws: (any Error).self) { try decodePNG(bytes) }
    }

    @Test func rejectsBadSizes() {
        #expect(throws: ImagingError.self) { try PNGEncoder.encodeGray8(width: 0, height: 1, pixels: []) }
        #expect(throws: ImagingError.self) { try PNGEncoder.encodeGray8(width: 2, height: 2, pixels: [1]) }
    }

    @Test func thumbnailOfSeries() throws {
        // 64x32 HU slices, 3 of them: middle slice has a bright square.
        var slices: [SliceInput] = []
        for z in 0..<3 {
            var px = [Int16](repeating: 0, count: 64 * 32)
            if z == 1 { for y in 8..<24 { for x in 16..<48 { px[y * 64 + x] = 80 } } }
            slices.append(SliceInput(pixels: .int16(px), rows: 32, columns: 64,
                                     header: SliceHeader(imagePosition: [0, 0, Double(z)], imageOrientation: [1, 0, 0, 0, 1, 0])))
        }
        let s = try SeriesPreprocessor.process(slices, info: SeriesInfo(modality: "CT", bodyPart: "HEAD"), options: .screening)
        let t = try Thumbnail.pixels(s, maxDimension: 32)
        #expect(t.width == 32 && t.height == 16)
        // Brain window 40/80: 0 HU -> 0, 80 HU -> 255.
        #expect(t.gray[0] == 0)
        #expect(t.gray[8 * 32 + 16] == 255)
        let png = try decodePNG(try Thumbnail.png(s, maxDimension: 32))
        #expect(png.pixels == t.gray)
    }
}
