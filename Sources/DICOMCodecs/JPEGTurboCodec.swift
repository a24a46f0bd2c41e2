import CJPEGTurbo
import CJPEGTurboRecovery

/// JPEG Baseline (Process 1, 1.2.840.10008.1.2.4.50) and the 8-bit streams of JPEG Extended
/// (Process 2 & 4, .4.51) through libjpeg-turbo: SOF0/SOF1, 8-bit precision, Huffman coding.
/// 12-bit, lossless and progressive streams are refused with `codec.unsupported` so a
/// registry can hand them to another codec.
///
/// Colour components come out as coded (no YCbCr → RGB here), upsampled to full resolution:
/// the pixel decoder converts YBR_FULL with the reference's arithmetic, which is what
/// pydicom does after libjpeg hands it the raw components.
public struct JPEGTurboCodec: PixelCodec {
    public static let baseline = "1.2.840.10008.1.2.4.50"
    public static let extended = "1.2.840.10008.1.2.4.51"

    public var transferSyntaxes: [String] { [Self.baseline, Self.extended] }

    /// Interpolate subsampled chroma instead of replicating it. Horizontal 2:1 chroma (the
    /// YBR_FULL_422 layout) is interpolated here with the weights of the libjpeg that
    /// pydicom's pylibjpeg uses; other subsampling with libjpeg-turbo's "fancy" upsampling.
    public var fancyUpsampling: Bool

    public init(fancyUpsampling: Bool = true) {
        self.fancyUpsampling = fancyUpsampling
    }

    public func validate(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) {
        let header = try JPEGStreamHeader.parse(input)
        guard header.frameMarker == 0xC0 || header.frameMarker == 0xC1 else {
            throw CodecError(.unsupported, "JPEG frame marker 0xFF\(hex(header.frameMarker)) is not baseline/extended sequential Huffman (SOF0/SOF1)")
        }
        guard header.precision == 8 else {
            throw CodecError(.unsupported, "JPEG precision \(header.precision) (libjpeg-turbo here decodes 8-bit streams)")
        }
        try header.check(against: d)
        guard d.samplesPerPixel == 1 || d.samplesPerPixel == 3 else {
            throw CodecError(.mismatch, "\(d.samplesPerPixel) samples per pixel (1 or 3 decoded)")
        }
        guard d.bitsStored <= 8 else {
            throw CodecError(.mismatch, "8-bit JPEG stream for Bits Stored \(d.bitsStored)")
        }
        guard d.bytesPerSample <= 2 else {
            throw CodecError(.mismatch, "8-bit JPEG stream for Bits Allocated \(d.bitsAllocated)")
        }
    }

    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                       descriptor d: FrameDescriptor) throws(CodecError) -> DecodedColour {
        try validate(input, descriptor: d)
        guard output.count >= d.frameBytes else {
            throw CodecError(.limit, "output buffer has \(output.count) bytes, frame needs \(d.frameBytes)")
        }
        guard input.count <= Int(UInt32.max) else { throw CodecError(.limit, "JPEG stream of \(input.count) bytes") }

        // libjpeg's own working memory (coefficient and sample buffers) stays well under a few
        // frames' worth; its allocator refuses beyond this.
        let maxMemory = 4 * d.rows * d.columns * d.samplesPerPixel + (16 << 20)
        guard let decoder = rg_jpeg_create(maxMemory) else { throw CodecError(.limit, "cannot allocate a JPEG decompressor") }
        defer { rg_jpeg_destroy(decoder) }
        let info = rg_jpeg_info(decoder)!
        func failure(_ step: String) -> CodecError {
            let text = String(cString: rg_jpeg_message(decoder))
            return CodecError(.corrupt, "libjpeg-turbo \(step): \(text)")
        }

        guard rg_jpeg_read_header(decoder, input.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(input.count)) == 0 else {
            throw failure("header")
        }
        // Cross-check libjpeg's own reading with ours (it may have read a different frame).
        guard Int(info.pointee.image_width) == d.columns, Int(info.pointee.image_height) == d.rows,
              Int(info.pointee.num_components) == d.samplesPerPixel, info.pointee.data_precision == 8 else {
            throw CodecError(.mismatch, "libjpeg-turbo reads \(info.pointee.image_width) x \(info.pointee.image_height) x \(info.pointee.num_components) at \(info.pointee.data_precision) bits")
        }
        guard info.pointee.progressive_mode == 0 else {
            throw CodecError(.unsupported, "progressive JPEG is not a DICOM baseline/extended process")
        }
        if d.samplesPerPixel == 3 {
            let space = info.pointee.jpeg_color_space
            guard space == JCS_YCbCr || space == JCS_RGB else {
                throw CodecError(.unsupported, "JPEG colour space \(space.rawValue) with 3 components")
            }
            info.pointee.out_color_space = space  // keep the coded components
        } else {
            info.pointee.out_color_space = JCS_GRAYSCALE
        }
        // 4:2:2 chroma (h2v1): libjpeg-turbo replicates, then each row is interpolated below.
        var chromaH2V1 = false
        if d.samplesPerPixel == 3, let comps = info.pointee.comp_info {
            chromaH2V1 = comps[0].h_samp_factor == 2 && comps[0].v_samp_factor == 1
                && (1...2).allSatisfy { comps[$0].h_samp_factor == 1 && comps[$0].v_samp_factor == 1 }
        }
        let ownUpsampling = fancyUpsampling && chromaH2V1
        info.pointee.dct_method = JDCT_ISLOW
        info.pointee.do_fancy_upsampling = fancyUpsampling && !ownUpsampling ? 1 : 0
        info.pointee.do_block_smoothing = 0

        guard rg_jpeg_start(decoder) == 0 else { throw failure("start") }
        guard Int(info.pointee.output_width) == d.columns, Int(info.pointee.output_height) == d.rows,
              Int(info.pointee.output_components) == d.samplesPerPixel else {
            throw CodecError(.mismatch, "libjpeg-turbo output is \(info.pointee.output_width) x \(info.pointee.output_height) x \(info.pointee.output_components)")
        }

        let rowSamples = d.columns * d.samplesPerPixel
        let base = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var chroma = [Int32](repeating: 0, count: ownUpsampling ? 2 * ((d.columns + 1) / 2) : 0)
        let batch = max(1, Int(info.pointee.rec_outbuf_height))
        if d.bytesPerSample == 1 {
            // Scanlines go straight into the caller's frame.
            var pointers = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: batch)
            try pointers.withUnsafeMutableBufferPointer { (rows) throws(CodecError) in
                var row = 0
                while row < d.rows {
                    let want = min(batch, d.rows - row)
                    for k in 0..<want { rows[k] = base + (row + k) * rowSamples }
                    var got: JDIMENSION = 0
                    guard rg_jpeg_read_rows(decoder, rows.baseAddress, JDIMENSION(want), &got) == 0 else { throw failure("scanline \(row)") }
                    guard got > 0 else { throw CodecError(.corrupt, "libjpeg-turbo returned no scanline at row \(row)") }
                    if ownUpsampling {
                        for k in 0..<Int(got) { Self.interpolateChromaH2V1(rows[k]!, columns: d.columns, scratch: &chroma) }
                    }
                    row += Int(got)
                }
            }
        } else {
            // Bits Allocated 16 with an 8-bit stream: widen each scanline.
            var scratch = [UInt8](repeating: 0, count: rowSamples * batch)
            var pointers = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: batch)
            let wide = output.baseAddress!.assumingMemoryBound(to: UInt16.self)
            try scratch.withUnsafeMutableBufferPointer { (lines) throws(CodecError) in
                try pointers.withUnsafeMutableBufferPointer { (rows) throws(CodecError) in
                    for k in 0..<batch { rows[k] = lines.baseAddress! + k * rowSamples }
                    var row = 0
                    while row < d.rows {
                        let want = min(batch, d.rows - row)
                        var got: JDIMENSION = 0
                        guard rg_jpeg_read_rows(decoder, rows.baseAddress, JDIMENSION(want), &got) == 0 else { throw failure("scanline \(row)") }
                        guard got > 0 else { throw CodecError(.corrupt, "libjpeg-turbo returned no scanline at row \(row)") }
                        if ownUpsampling {
                            for k in 0..<Int(got) { Self.interpolateChromaH2V1(rows[k]!, columns: d.columns, scratch: &chroma) }
                        }
                        let count = Int(got) * rowSamples
                        let dst = wide + row * rowSamples
                        for i in 0..<count { dst[i] = UInt16(lines[i]).littleEndian }
                        row += Int(got)
                    }
                }
            }
        }
        return .asDeclared
    }

    /// Replaces replicated Cb/Cr samples (positions 1 and 2 of each interleaved pixel) of one
    /// row with interpolated ones: output x takes 3/4 of its chroma sample c[x/2] and 1/4 of
    /// the neighbour on its side (libjpeg's triangle filter, edges replicated), except that
    /// odd x with x mod 8 == 1 takes 13/16 and 3/16 — the weights pylibjpeg's libjpeg
    /// produces there (fitted to its output; within ±1 of it, the IDCT's own difference).
    static func interpolateChromaH2V1(_ row: UnsafeMutablePointer<UInt8>, columns: Int, scratch: inout [Int32]) {
        let n = (columns + 1) / 2
        scratch.withUnsafeMutableBufferPointer { c in
            for channel in 1...2 {
                let offset = (channel - 1) * n
                for k in 0..<n { c[offset + k] = Int32(row[6 * k + channel]) }
                for x in 0..<columns {
                    let k = x >> 1
                    let here = c[offset + k]
                    let value: Int32
                    if x & 1 == 0 {
                        value = (3 * here + c[offset + max(k - 1, 0)] + 2) >> 2
                    } else if x & 7 == 1 {
                        value = (13 * here + 3 * c[offset + min(k + 1, n - 1)] + 8) >> 4
                    } else {
                        value = (3 * here + c[offset + min(k + 1, n - 1)] + 2) >> 2
                    }
                    row[3 * x + channel] = UInt8(truncatingIfNeeded: value)
                }
            }
        }
    }
}
