import COpenJPHShim

/// High-Throughput JPEG 2000 (1.2.840.10008.1.2.4.201, .4.202, .4.203) through OpenJPH 0.9,
/// whose HT block decoder is faster than OpenJPEG's and, unlike Debian's OpenJPEG build, does
/// not abort the process on a damaged code-block: the grid decodes HT block coding here only
/// (`JPEG2000Codec.decodesHighThroughput`). Registered before `JPEG2000Codec` for those
/// syntaxes; a codestream that is not HT (Part 1 data under an HTJ2K syntax), a JP2 file or
/// precision above 16 bits answers `codec.unsupported` and goes on to OpenJPEG (which takes
/// the Part 1 ones). A damaged HT stream is `codec.corrupt`: OpenJPH 0.9 does not detect a
/// cut-off codestream itself, so only one whose tile-parts reach its EOC marker is decoded,
/// and it cannot say why it refused a stream (its error text is not reachable).
///
/// Samples come out as `JPEG2000Codec` writes them (same container, signedness and clamping
/// rules), the inverse RCT/ICT applied when the codestream says so (`.convertedToRGB`).
public struct OpenJPHCodec: PixelCodec {
    public var transferSyntaxes: [String] { [JPEG2000Codec.htLossless, JPEG2000Codec.htLosslessRPCL, JPEG2000Codec.htLossy] }

    /// The same header checks (size, components, precision, tiles) as the OpenJPEG codec.
    let headerCheck: JPEG2000Codec

    public init(maxTiles: Int = 4096) {
        headerCheck = JPEG2000Codec(maxTiles: maxTiles)
    }

    public func validate(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) {
        _ = try checkedHeader(input, descriptor: d)
    }

    func checkedHeader(_ input: UnsafeRawBufferPointer, descriptor d: FrameDescriptor) throws(CodecError) -> J2KStreamHeader {
        let header = try headerCheck.checkedHeader(input, descriptor: d)
        guard !header.isJP2 else { throw CodecError(.unsupported, "OpenJPH decodes raw codestreams, not JP2 files") }
        guard header.isHighThroughput else { throw CodecError(.unsupported, "codestream does not set Rsiz bit 14 (HTJ2K)") }
        guard header.components[0].precision <= 16 else {
            throw CodecError(.unsupported, "precision \(header.components[0].precision) above 16 bits is left to OpenJPEG")
        }
        // Coding styles within the standard's limits before OpenJPH sizes buffers from them.
        _ = try header.usesHighThroughputCoding(input)
        return header
    }

    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                       descriptor d: FrameDescriptor) throws(CodecError) -> DecodedColour {
        let header = try checkedHeader(input, descriptor: d)
        guard output.count >= d.frameBytes else {
            throw CodecError(.limit, "output buffer has \(output.count) bytes, frame needs \(d.frameBytes)")
        }
        // OpenJPH 0.9 decodes a cut-off codestream as far as it goes, without an error:
        // only a stream whose tile-parts reach its EOC marker is taken.
        if let problem = Self.incompleteTileParts(input, codestreamOffset: header.codestreamOffset) {
            throw CodecError(.corrupt, "HTJ2K codestream is incomplete: \(problem)")
        }
        let first = header.components[0]
        let rows = d.rows, columns = d.columns, samples = d.samplesPerPixel

        var message = [CChar](repeating: 0, count: 256)
        var info = radgrid_ojph_info()
        let data = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard let decoder = radgrid_ojph_open(data, input.count, &info, &message, message.count) else {
            throw CodecError(.corrupt, "OpenJPH refused the HTJ2K main header (\(Self.text(message)))")
        }
        defer { radgrid_ojph_close(decoder) }
        let depths = [info.bit_depth.0, info.bit_depth.1, info.bit_depth.2]
        let signs = [info.is_signed.0, info.is_signed.1, info.is_signed.2]
        guard Int(info.width) == columns, Int(info.height) == rows, Int(info.components) == samples,
              (0..<samples).allSatisfy({ Int(depths[$0]) == first.precision && (signs[$0] != 0) == first.isSigned }) else {
            throw CodecError(.corrupt, "OpenJPH reads \(info.width) x \(info.height) x \(info.components) at \(info.bit_depth.0) bits")
        }

        let writer = J2KSampleWriter(precision: first.precision, streamSigned: first.isSigned, descriptor: d)
        let base = output.baseAddress!
        // Lines arrive row by row, one per component; count each component's rows.
        var nextRow = (0, 0, 0)
        var component: UInt32 = 0
        var line: UnsafePointer<Int32>?
        for _ in 0..<(rows * samples) {
            guard radgrid_ojph_pull(decoder, &component, &line, &message, message.count) == Int32(RADGRID_OJPH_OK), let line else {
                throw CodecError(.corrupt, "OpenJPH stopped decoding (\(Self.text(message)))")
            }
            let row: Int
            switch component {
            case 0: row = nextRow.0; nextRow.0 += 1
            case 1 where samples == 3: row = nextRow.1; nextRow.1 += 1
            case 2 where samples == 3: row = nextRow.2; nextRow.2 += 1
            default: throw CodecError(.corrupt, "OpenJPH returned a line of component \(component)")
            }
            guard row < rows else { throw CodecError(.corrupt, "OpenJPH returned more than \(rows) rows of component \(component)") }
            writer.write(line, count: columns, component: Int(component), firstPixel: row * columns, into: base, clamp: true)
        }
        let usesMCT = samples == 3 && OpenJPEGMessages.codestreamUsesMCT(input, codestreamOffset: header.codestreamOffset)
        return usesMCT ? .convertedToRGB : .asDeclared
    }

    static func text(_ message: [CChar]) -> String {
        let s = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return s.isEmpty ? "no detail" : s
    }

    /// Why the codestream's tile-parts do not run from the first SOT to an EOC marker (zero
    /// padding after it aside), or nil when they do. Each SOT's Psot gives the tile-part's
    /// length; Psot 0 (the last tile-part runs to EOC) needs the stream to end with EOC.
    static func incompleteTileParts(_ data: UnsafeRawBufferPointer, codestreamOffset: Int) -> String? {
        var end = data.count
        while end > codestreamOffset && data[end - 1] == 0 { end -= 1 }
        guard end >= codestreamOffset + 4, data[end - 2] == 0xFF, data[end - 1] == 0xD9 else {
            return "the codestream does not end with an EOC marker"
        }
        // Main header: marker segments up to the first SOT.
        var pos = codestreamOffset + 2
        while pos + 4 <= end, data[pos] == 0xFF, data[pos + 1] != 0x90 {
            let length = Int(data[pos + 2]) << 8 | Int(data[pos + 3])
            guard length >= 2 else { return "marker segment at offset \(pos) has length \(length)" }
            pos += 2 + length
        }
        while pos + 12 <= end, data[pos] == 0xFF, data[pos + 1] == 0x90 {
            let psot = Int(data[pos + 6]) << 24 | Int(data[pos + 7]) << 16 | Int(data[pos + 8]) << 8 | Int(data[pos + 9])
            if psot == 0 { return nil }  // runs to the EOC found above
            guard psot >= 14 else { return "tile-part at offset \(pos) declares \(psot) bytes" }
            pos += psot
        }
        return pos == end - 2 ? nil : "the tile-parts end at offset \(pos), the EOC marker is at \(end - 2)"
    }
}
