import DICOMCodecs
import Testing

/// Frame headers built byte by byte (ISO/IEC 10918-1 B.2, 15444-1 A.5.1).
enum Streams {
    static func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func be32(_ v: Int) -> [UInt8] { be16(v >> 16) + be16(v & 0xFFFF) }

    /// SOI, an optional JFIF APP0, a frame header (SOFn) and EOI.
    static func jpeg(marker: UInt8 = 0xC0, precision: UInt8 = 8, rows: Int, columns: Int, ids: [UInt8], jfif: Bool = false) -> [UInt8] {
        var s: [UInt8] = [0xFF, 0xD8]
        if jfif { s += [0xFF, 0xE0] + be16(16) + Array("JFIF".utf8) + [0, 1, 1, 0] + be16(1) + be16(1) + [0, 0] }
        s += [0xFF, marker] + be16(8 + 3 * ids.count) + [precision] + be16(rows) + be16(columns) + [UInt8(ids.count)]
        for id in ids { s += [id, id == ids[0] && ids.count == 3 ? 0x21 : 0x11, 0] }
        return s + [0xFF, 0xD9]
    }

    /// SOC and a SIZ segment for `components` identical components.
    static func j2k(width: Int, height: Int, tile: Int, components: Int, precision: Int, signed: Bool, rsiz: Int = 0) -> [UInt8] {
        var s: [UInt8] = [0xFF, 0x4F, 0xFF, 0x51] + be16(38 + 3 * components) + be16(rsiz)
        s += be32(width) + be32(height) + be32(0) + be32(0) + be32(tile) + be32(tile) + be32(0) + be32(0) + be16(components)
        for _ in 0..<components { s += [UInt8(precision - 1) | (signed ? 0x80 : 0), 1, 1] }
        return s + [0xFF, 0xD9]
    }
}

/// Array.withUnsafeBytes has no typed throws; the buffer-pointer forms do.
func withBytes<R>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(CodecError) -> R) throws(CodecError) -> R {
    try a.withUnsafeBufferPointer { (p) throws(CodecError) -> R in try body(UnsafeRawBufferPointer(p)) }
}

func withMutableBytes<R>(_ a: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(CodecError) -> R) throws(CodecError) -> R {
    try a.withUnsafeMutableBufferPointer { (p) throws(CodecError) -> R in try body(UnsafeMutableRawBufferPointer(p)) }
}

@Suite struct StreamHeaderTests {
    @Test func jpegFrameHeaderIsRead() throws {
        let bytes = Streams.jpeg(rows: 45, columns: 51, ids: [1, 2, 3], jfif: true)
        let h = try withBytes(bytes) { (b) throws(CodecError) in try JPEGStreamHeader.parse(b) }
        #expect(h.frameMarker == 0xC0 && h.precision == 8 && h.height == 45 && h.width == 51)
        #expect(h.componentIDs == [1, 2, 3] && h.hasJFIF)
        #expect(h.sampling.map { [$0.h, $0.v] } == [[2, 1], [1, 1], [1, 1]])
    }

    @Test func jpegSegmentLongerThanTheStreamIsCorrupt() {
        var bytes = Streams.jpeg(rows: 8, columns: 8, ids: [1])
        bytes[4] = 0x7F  // SOF length high byte
        let error = #expect(throws: CodecError.self) {
            try withBytes(bytes) { (b) throws(CodecError) in _ = try JPEGStreamHeader.parse(b) }
        }
        #expect(error?.codeValue == .corrupt)
        #expect(error?.message.contains("offset 2") == true)
    }

    @Test func j2kSizeTilesAndSignednessAreRead() throws {
        let bytes = Streams.j2k(width: 513, height: 300, tile: 256, components: 3, precision: 12, signed: true, rsiz: 0x4000)
        let h = try withBytes(bytes) { (b) throws(CodecError) in try J2KStreamHeader.parse(b) }
        #expect(h.width == 513 && h.height == 300 && h.tiles == 6)
        #expect(h.components.count == 3 && h.components.allSatisfy { $0.precision == 12 && $0.isSigned })
        #expect(h.isHighThroughput && !h.isJP2)
    }

    @Test func codecsRefuseHeadersThatDisagreeBeforeDecoding() {
        let grey = FrameDescriptor(rows: 16, columns: 16, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, isSigned: true,
                                   photometricInterpretation: "MONOCHROME2")
        let j2k = Streams.j2k(width: 16, height: 17, tile: 16, components: 1, precision: 16, signed: true)
        let e1 = #expect(throws: CodecError.self) {
            try withBytes(j2k) { (b) throws(CodecError) in try JPEG2000Codec().validate(b, descriptor: grey) }
        }
        #expect(e1?.codeValue == .mismatch)
        let tiles = Streams.j2k(width: 16, height: 16, tile: 1, components: 1, precision: 16, signed: true)
        let e2 = #expect(throws: CodecError.self) {
            try withBytes(tiles) { (b) throws(CodecError) in try JPEG2000Codec(maxTiles: 100).validate(b, descriptor: grey) }
        }
        #expect(e2?.codeValue == .limit)
        let jls = Streams.jpeg(marker: 0xF7, precision: 16, rows: 16, columns: 16, ids: [1])
        #expect(throws: Never.self) {
            try withBytes(jls) { (b) throws(CodecError) in try JPEGLSCodec().validate(b, descriptor: grey) }
        }
        let colour = FrameDescriptor(rows: 16, columns: 16, samplesPerPixel: 3, bitsAllocated: 16, bitsStored: 16, isSigned: false,
                                     photometricInterpretation: "RGB")
        let e3 = #expect(throws: CodecError.self) {
            try withBytes(jls) { (b) throws(CodecError) in try JPEGLSCodec().validate(b, descriptor: colour) }
        }
        #expect(e3?.codeValue == .mismatch)
    }
}

/// A second codec for the registry's hand-over test: it records that it was asked and
/// writes a constant frame (the registry, not this codec, is under test).
struct ConstantCodec: PixelCodec {
    var transferSyntaxes: [String] { [JPEGTurboCodec.extended] }
    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                descriptor: FrameDescriptor) throws(CodecError) -> DecodedColour {
        for i in 0..<descriptor.frameBytes { output[i] = 0xAB }
        return .asDeclared
    }
}

@Suite struct CodecRegistryTests {
    let twelveBit = FrameDescriptor(rows: 4, columns: 4, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, isSigned: false,
                                    photometricInterpretation: "MONOCHROME2")
    /// The C-library codecs alone (the grid's registry adds the Swift JPEG decoder after them).
    static let libraries = CodecRegistry([JPEGTurboCodec(), JPEGLSCodec(), JPEG2000Codec()])

    @Test func unsupportedStreamsPassToTheNextCodec() throws {
        let stream = Streams.jpeg(marker: 0xC1, precision: 12, rows: 4, columns: 4, ids: [1])
        var output = [UInt8](repeating: 0, count: twelveBit.frameBytes)
        // libjpeg-turbo alone refuses a 12-bit stream as unsupported, naming itself.
        let alone = Self.libraries
        let error = #expect(throws: CodecError.self) {
            try withBytes(stream) { (input) throws(CodecError) in
                try withMutableBytes(&output) { (out) throws(CodecError) in
                    _ = try alone.decode(transferSyntax: JPEGTurboCodec.extended, input, into: out, descriptor: twelveBit)
                }
            }
        }
        #expect(error?.codeValue == .unsupported)
        #expect(error?.message.contains("JPEGTurboCodec") == true && error?.message.contains("precision 12") == true)
        // With a second codec registered after it, that codec decodes the stream.
        var registry = Self.libraries
        registry.register(ConstantCodec())
        #expect(registry.codecs(for: JPEGTurboCodec.extended).count == 2)
        try withBytes(stream) { (input) throws(CodecError) in
            try withMutableBytes(&output) { (out) throws(CodecError) in
                try registry.validate(transferSyntax: JPEGTurboCodec.extended, input, descriptor: twelveBit)
                _ = try registry.decode(transferSyntax: JPEGTurboCodec.extended, input, into: out, descriptor: twelveBit)
            }
        }
        #expect(output.allSatisfy { $0 == 0xAB })
        // The grid's registry hands 12-bit and lossless JPEG to the Swift decoder.
        for syntax in ["1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"] {
            #expect(CodecRegistry.standard.codecs(for: syntax).contains { $0 is SwiftJPEGCodec })
        }
    }

    @Test func corruptStreamsDoNotPassOn() {
        var registry = Self.libraries
        registry.register(ConstantCodec())
        let garbage: [UInt8] = [0xFF, 0xD8, 0xFF, 0xC1, 0x00]  // frame header cut off
        var output = [UInt8](repeating: 0, count: twelveBit.frameBytes)
        let error = #expect(throws: CodecError.self) {
            try withBytes(garbage) { (input) throws(CodecError) in
                try withMutableBytes(&output) { (out) throws(CodecError) in
                    _ = try registry.decode(transferSyntax: JPEGTurboCodec.extended, input, into: out, descriptor: twelveBit)
                }
            }
        }
        #expect(error?.codeValue == .corrupt)
        #expect(output.allSatisfy { $0 == 0 })
    }
}
