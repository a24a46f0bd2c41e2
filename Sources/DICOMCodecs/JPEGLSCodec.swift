import CCharLS

/// JPEG-LS Lossless (1.2.840.10008.1.2.4.80) and Near-Lossless (.4.81) through CharLS: every
/// interleave mode (none, line, sample), 2–16 bit precision, 1 or 3 components.
///
/// JPEG-LS has no notion of signed samples: for Pixel Representation 1 the decoded values
/// are sign-extended from the stream's precision, as pydicom does.
public struct JPEGLSCodec: PixelCodec {
    public static let lossless = "1.2.840.10008.1.2.4.80"
    public static let nearLossless = "1.2.840.10008.1.2.4.81"

    public var transferSyntaxes: [String] { [Self.lossless, Self.nearLossless] }

    public init() {}

    public func validate(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) {
        _ = try checkedHeader(input, descriptor: d)
    }

    func checkedHeader(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) -> JPEGStreamHeader {
        let header = try JPEGStreamHeader.parse(input)
        guard header.frameMarker == 0xF7 else {
            throw CodecError(.mismatch, "frame marker 0xFF\(hex(header.frameMarker)) is not JPEG-LS (SOF55)")
        }
        try header.check(against: d)
        guard d.samplesPerPixel == 1 || d.samplesPerPixel == 3 else {
            throw CodecError(.mismatch, "\(d.samplesPerPixel) samples per pixel (1 or 3 decoded)")
        }
        guard (2...16).contains(header.precision), header.precision <= 8 * d.bytesPerSample else {
            throw CodecError(.mismatch, "JPEG-LS precision \(header.precision) for Bits Allocated \(d.bitsAllocated)")
        }
        return header
    }

    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                       descriptor d: FrameDescriptor) throws(CodecError) -> DecodedColour {
        let header = try checkedHeader(input, descriptor: d)
        guard output.count >= d.frameBytes else {
            throw CodecError(.limit, "output buffer has \(output.count) bytes, frame needs \(d.frameBytes)")
        }
        // CharLS 2.4.1 spends seconds (about 11 s for a 125 x 127 frame) before failing on a
        // stream that stops without a marker, yet fails at once when an EOI follows the cut:
        // a stream without its EOI (zero padding aside) is decoded from a copy with one added.
        var end = input.count
        while end > 2 && input[end - 1] == 0 { end -= 1 }
        if end < 2 || input[end - 2] != 0xFF || input[end - 1] != 0xD9 {
            var terminated = [UInt8](input)
            terminated.append(contentsOf: [0xFF, 0xD9])
            return try terminated.withUnsafeMutableBufferPointer { (copy) throws(CodecError) in
                try decodeTerminated(UnsafeRawBufferPointer(copy), header: header, into: output, descriptor: d)
            }
        }
        return try decodeTerminated(input, header: header, into: output, descriptor: d)
    }

    func decodeTerminated(_ input: UnsafeRawBufferPointer, header: JPEGStreamHeader, into output: UnsafeMutableRawBufferPointer,
                          descriptor d: FrameDescriptor) throws(CodecError) -> DecodedColour {
        guard let decoder = charls_jpegls_decoder_create() else { throw CodecError(.limit, "cannot allocate a JPEG-LS decoder") }
        defer { charls_jpegls_decoder_destroy(decoder) }
        func failure(_ step: String, _ code: charls_jpegls_errc) -> CodecError {
            let text = String(cString: charls_get_error_message(code))
            return CodecError(.corrupt, "CharLS \(step): \(text) (error \(code.rawValue))")
        }
        var rc = charls_jpegls_decoder_set_source_buffer(decoder, input.baseAddress!, input.count)
        guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("source", rc) }
        rc = charls_jpegls_decoder_read_header(decoder)
        guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("header", rc) }
        var frame = charls_frame_info()
        rc = charls_jpegls_decoder_get_frame_info(decoder, &frame)
        guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("frame info", rc) }
        guard Int(frame.width) == d.columns, Int(frame.height) == d.rows, Int(frame.component_count) == d.samplesPerPixel,
              Int(frame.bits_per_sample) == header.precision else {
            throw CodecError(.mismatch, "CharLS reads \(frame.width) x \(frame.height) x \(frame.component_count) at \(frame.bits_per_sample) bits")
        }
        var interleave = CHARLS_INTERLEAVE_MODE_NONE
        rc = charls_jpegls_decoder_get_interleave_mode(decoder, &interleave)
        guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("interleave mode", rc) }

        let precision = header.precision
        let container = precision <= 8 ? 1 : 2
        let pixels = d.rows * d.columns
        let samples = d.samplesPerPixel
        var size = 0
        rc = charls_jpegls_decoder_get_destination_size(decoder, 0, &size)
        guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("destination size", rc) }
        guard size == pixels * samples * container else {
            throw CodecError(.mismatch, "CharLS needs \(size) bytes for a \(pixels * samples * container)-byte frame")
        }
        let planar = samples > 1 && interleave == CHARLS_INTERLEAVE_MODE_NONE
        let signExtend = d.isSigned && precision < 8 * d.bytesPerSample

        if container == d.bytesPerSample && !planar {
            // The stream's layout is the frame's: decode in place.
            rc = charls_jpegls_decoder_decode_to_buffer(decoder, output.baseAddress!, size, 0)
            guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("decode", rc) }
            if signExtend { Self.signExtend(output, count: pixels * samples, bytesPerSample: container, precision: precision) }
            return .asDeclared
        }
        // Colour by plane, or 8-bit samples in 16-bit containers: decode aside, then lay out.
        var scratch = [UInt8](repeating: 0, count: size)
        rc = scratch.withUnsafeMutableBytes { charls_jpegls_decoder_decode_to_buffer(decoder, $0.baseAddress!, size, 0) }
        guard rc == CHARLS_JPEGLS_ERRC_SUCCESS else { throw failure("decode", rc) }
        scratch.withUnsafeBytes { src in
            Self.layOut(src, into: output, pixels: pixels, samples: samples, planar: planar, container: container,
                        bytesPerSample: d.bytesPerSample, precision: precision, signed: d.isSigned)
        }
        return .asDeclared
    }

    /// Sign-extends `precision`-bit values in place (little-endian containers).
    static func signExtend(_ buffer: UnsafeMutableRawBufferPointer, count: Int, bytesPerSample: Int, precision: Int) {
        if bytesPerSample == 1 {
            let p = buffer.baseAddress!.assumingMemoryBound(to: Int8.self)
            let shift = Int8(8 - precision)
            for i in 0..<count { p[i] = (p[i] << shift) >> shift }
        } else {
            let p = buffer.baseAddress!.assumingMemoryBound(to: Int16.self)
            let shift = Int16(16 - precision)
            for i in 0..<count { p[i] = Int16(littleEndian: (Int16(littleEndian: p[i]) << shift) >> shift) }
        }
    }

    /// Copies decoded samples (planar or interleaved, 1- or 2-byte) into the interleaved
    /// frame, widening and sign-extending as needed.
    static func layOut(_ src: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, pixels: Int, samples: Int,
                       planar: Bool, container: Int, bytesPerSample: Int, precision: Int, signed: Bool) {
        let shift = 32 - precision
        for c in 0..<samples {
            for p in 0..<pixels {
                let s = planar ? c * pixels + p : p * samples + c
                var v: Int32
                if container == 1 {
                    v = Int32(src[s])
                } else {
                    v = Int32(src[2 * s]) | Int32(src[2 * s + 1]) << 8
                }
                if signed { v = (v << Int32(shift)) >> Int32(shift) }
                let o = (p * samples + c) * bytesPerSample
                output[o] = UInt8(truncatingIfNeeded: v)
                if bytesPerSample == 2 { output[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
            }
        }
    }
}
