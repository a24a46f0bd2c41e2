import COpenJPEG

/// JPEG 2000 (1.2.840.10008.1.2.4.90 lossless, .4.91) and High-Throughput JPEG 2000
/// (.4.201, .4.202, .4.203) through OpenJPEG 2.5, which decodes both block coders.
///
/// The inverse multi-component transform (RCT/ICT) is applied when the codestream says so,
/// so YBR_RCT/YBR_ICT data comes out as RGB (`.convertedToRGB`). Samples are written as
/// pydicom 3 with pylibjpeg-openjpeg reports them: each value in a container of 8, 16 or 32
/// bits by the stream's precision, read with the data set's signedness; and for monochrome
/// data whose stream signedness differs from Pixel Representation, re-extended from the
/// stream's precision.
public struct JPEG2000Codec: PixelCodec {
    public static let lossless = "1.2.840.10008.1.2.4.90"
    public static let lossy = "1.2.840.10008.1.2.4.91"
    public static let htLossless = "1.2.840.10008.1.2.4.201"
    public static let htLosslessRPCL = "1.2.840.10008.1.2.4.202"
    public static let htLossy = "1.2.840.10008.1.2.4.203"

    public var transferSyntaxes: [String] { [Self.lossless, Self.lossy, Self.htLossless, Self.htLosslessRPCL, Self.htLossy] }

    /// Most tiles a codestream may declare: OpenJPEG allocates per-tile coding state up
    /// front (a few KiB each), so a tiny stream declaring millions of tiles is refused.
    public var maxTiles: Int
    /// Whether OpenJPEG may decode HTJ2K block coding. Off in the grid: Debian's OpenJPEG
    /// 2.5.0 is built with assertions, and one in its HT block decoder (`mel_init`) aborts the
    /// process on a malformed code-block (found by the codec fuzzer). HTJ2K goes to
    /// `OpenJPHCodec`; here such a stream is `codec.unsupported`.
    public var decodesHighThroughput: Bool

    public init(maxTiles: Int = 4096, decodesHighThroughput: Bool = false) {
        self.maxTiles = maxTiles
        self.decodesHighThroughput = decodesHighThroughput
    }

    public func validate(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) {
        let header = try checkedHeader(input, descriptor: d)
        try refuseHighThroughput(input, header)
    }

    func refuseHighThroughput(_ input: UnsafeRawBufferPointer, _ header: J2KStreamHeader) throws(CodecError) {
        guard !decodesHighThroughput, try header.usesHighThroughputCoding(input) else { return }
        throw CodecError(.unsupported, "HTJ2K block coding is decoded by OpenJPH only (OpenJPEG's HT decoder can abort on damaged data)")
    }

    func checkedHeader(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) -> J2KStreamHeader {
        let header = try J2KStreamHeader.parse(input)
        guard header.width == d.columns, header.height == d.rows else {
            throw CodecError(.mismatch, "codestream is \(header.width) x \(header.height) (columns x rows), data set says \(d.columns) x \(d.rows)")
        }
        guard header.components.count == d.samplesPerPixel else {
            throw CodecError(.mismatch, "codestream has \(header.components.count) components, data set says \(d.samplesPerPixel) samples per pixel")
        }
        guard d.samplesPerPixel == 1 || d.samplesPerPixel == 3 else {
            throw CodecError(.mismatch, "\(d.samplesPerPixel) samples per pixel (1 or 3 decoded)")
        }
        let first = header.components[0]
        for (i, c) in header.components.enumerated() {
            guard c.dx == 1, c.dy == 1 else { throw CodecError(.unsupported, "component \(i) is subsampled \(c.dx) x \(c.dy)") }
            guard c.precision == first.precision, c.isSigned == first.isSigned else {
                throw CodecError(.unsupported, "components differ in precision or signedness")
            }
        }
        let precision = first.precision
        guard precision <= 8 * d.bytesPerSample, precision <= 31 else {
            throw CodecError(.mismatch, "codestream precision \(precision) for Bits Allocated \(d.bitsAllocated)")
        }
        guard header.tiles <= maxTiles else {
            throw CodecError(.limit, "codestream declares \(header.tiles) tiles (limit \(maxTiles))")
        }
        return header
    }

    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                       descriptor d: FrameDescriptor) throws(CodecError) -> DecodedColour {
        let header = try checkedHeader(input, descriptor: d)
        try refuseHighThroughput(input, header)
        let first = header.components[0]
        let precision = first.precision
        guard output.count >= d.frameBytes else {
            throw CodecError(.limit, "output buffer has \(output.count) bytes, frame needs \(d.frameBytes)")
        }

        // OpenJPEG may report an error from any call up to opj_destroy_codec: the collector is
        // retained for the codec's whole life, not just to its last use in Swift.
        let messages = OpenJPEGMessages()
        let retained = Unmanaged.passRetained(messages)
        defer { retained.release() }
        let box = retained.toOpaque()
        guard let codec = opj_create_decompress(header.isJP2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K) else {
            throw CodecError(.limit, "cannot allocate a JPEG 2000 decoder")
        }
        defer { opj_destroy_codec(codec) }
        _ = opj_set_error_handler(codec, { text, user in
            guard let text, let user else { return }
            Unmanaged<OpenJPEGMessages>.fromOpaque(user).takeUnretainedValue().record(text)
        }, box)
        var parameters = opj_dparameters_t()
        opj_set_default_decoder_parameters(&parameters)
        guard opj_setup_decoder(codec, &parameters) != 0 else { throw CodecError(.corrupt, "OpenJPEG setup: \(messages.text)") }
        // Truncated codestreams are errors, not partial images. Decoding stays on the calling
        // thread (callers parallelise): no opj_codec_set_threads, whose 1 still starts a
        // worker thread.
        _ = opj_decoder_set_strict_mode(codec, 1)

        let cursor = UnsafeMutablePointer<MemoryCursor>.allocate(capacity: 1)
        cursor.initialize(to: MemoryCursor(base: input.baseAddress!, count: input.count, offset: 0))
        defer { cursor.deallocate() }
        guard let stream = opj_stream_default_create(1) else { throw CodecError(.limit, "cannot allocate a JPEG 2000 stream") }
        defer { opj_stream_destroy(stream) }
        opj_stream_set_user_data(stream, cursor, nil)
        opj_stream_set_user_data_length(stream, UInt64(input.count))
        opj_stream_set_read_function(stream, { buffer, size, user in
            let c = user!.assumingMemoryBound(to: MemoryCursor.self)
            let left = c.pointee.count - c.pointee.offset
            // (OPJ_SIZE_T)-1 marks the end; size_t imports as Int, so that is -1, not .max.
            if left <= 0 { return -1 }
            let n = min(Int(size), left)
            buffer!.copyMemory(from: c.pointee.base + c.pointee.offset, byteCount: n)
            c.pointee.offset += n
            return OPJ_SIZE_T(n)
        })
        opj_stream_set_skip_function(stream, { delta, user in
            let c = user!.assumingMemoryBound(to: MemoryCursor.self)
            let target = c.pointee.offset + Int(delta)
            if target < 0 || target > c.pointee.count { return -1 }
            c.pointee.offset = target
            return delta
        })
        opj_stream_set_seek_function(stream, { position, user in
            let c = user!.assumingMemoryBound(to: MemoryCursor.self)
            if position < 0 || Int(position) > c.pointee.count { return 0 }
            c.pointee.offset = Int(position)
            return 1
        })

        var imagePointer: UnsafeMutablePointer<opj_image_t>?
        guard opj_read_header(stream, codec, &imagePointer) != 0, let image = imagePointer else {
            throw CodecError(.corrupt, "OpenJPEG header: \(messages.text)")
        }
        defer { opj_image_destroy(image) }
        let width = Int(image.pointee.x1) - Int(image.pointee.x0)
        let height = Int(image.pointee.y1) - Int(image.pointee.y0)
        guard width == d.columns, height == d.rows, Int(image.pointee.numcomps) == d.samplesPerPixel else {
            throw CodecError(.mismatch, "OpenJPEG reads \(width) x \(height) x \(image.pointee.numcomps)")
        }
        guard opj_decode(codec, stream, image) != 0 else { throw CodecError(.corrupt, "OpenJPEG decode: \(messages.text)") }
        guard opj_end_decompress(codec, stream) != 0 else { throw CodecError(.corrupt, "OpenJPEG end of codestream: \(messages.text)") }

        let samples = d.samplesPerPixel
        let pixels = d.rows * d.columns
        var planes: [UnsafeMutablePointer<Int32>] = []
        for i in 0..<samples {
            let comp = image.pointee.comps[i]
            guard let data = comp.data, Int(comp.w) == d.columns, Int(comp.h) == d.rows, Int(comp.prec) == precision,
                  (comp.sgnd != 0) == first.isSigned, comp.dx == 1, comp.dy == 1 else {
                throw CodecError(.corrupt, "OpenJPEG component \(i) decoded as \(comp.w) x \(comp.h) at \(comp.prec) bits, no data or unexpected layout")
            }
            planes.append(data)
        }

        let writer = J2KSampleWriter(precision: precision, streamSigned: first.isSigned, descriptor: d)
        for (c, plane) in planes.enumerated() {
            writer.write(plane, count: pixels, component: c, firstPixel: 0, into: output.baseAddress!, clamp: false)
        }
        let usesMCT = samples == 3 && OpenJPEGMessages.codestreamUsesMCT(input, codestreamOffset: header.codestreamOffset)
        return usesMCT ? .convertedToRGB : .asDeclared
    }
}

/// The read position in the caller's input while OpenJPEG pulls from it.
struct MemoryCursor {
    let base: UnsafeRawPointer
    let count: Int
    var offset: Int
}

/// OpenJPEG's error messages for one decode (it reports through a callback).
final class OpenJPEGMessages: @unchecked Sendable {
    private(set) var lines: [String] = []

    func record(_ text: UnsafePointer<CChar>) {
        if lines.count < 4 {
            var line = Substring(String(cString: text))
            while let last = line.last, last == "\n" || last == "\r" { line = line.dropLast() }
            lines.append(String(line))
        }
    }

    var text: String { lines.isEmpty ? "no detail" : lines.joined(separator: "; ") }

    /// Whether the main header's COD segment enables the multiple component transform.
    static func codestreamUsesMCT(_ data: UnsafeRawBufferPointer, codestreamOffset: Int) -> Bool {
        var pos = codestreamOffset + 2  // after SOC
        let n = data.count
        while pos + 4 <= n, data[pos] == 0xFF {
            let marker = data[pos + 1]
            if marker == 0x90 || marker == 0x93 || marker == 0xD9 { return false }  // SOT, SOD, EOC: main header over
            let length = Int(data[pos + 2]) << 8 | Int(data[pos + 3])
            if marker == 0x52 {  // COD: Lcod, Scod, SGcod (progression, layers[2], MCT)
                return pos + 8 < n && length >= 7 && data[pos + 8] != 0
            }
            guard length >= 2 else { return false }
            pos += 2 + length
        }
        return false
    }
}
