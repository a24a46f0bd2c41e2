#if canImport(Glibc)
import Glibc
#endif
import DICOM
import DICOMCodecs

// Harness 2: raw codestreams straight into each PixelCodec, with a frame descriptor taken
// from the input's first bytes, so the fuzzer varies the data set's claims (size, samples,
// bits, signedness, colour) against the stream's own header. Linked as `fuzz-codecs`.
//
// Input layout (8 bytes, then the stream):
//   0: bits 0-1 codec (0 libjpeg-turbo, 1 CharLS, 2 OpenJPEG, 3 Swift JPEG); bit 2 libjpeg-turbo
//      without fancy upsampling, or OpenJPH instead of OpenJPEG (harness codec number 4);
//      bit 3 signed; bits 4-5 photometric (MONOCHROME2, RGB, YBR_FULL, YBR_FULL_422);
//      bits 6-7 Bits Allocated (8, 16, 32, 12)
//   1-2: rows, 3-4: columns (big endian); 5: samples per pixel; 6: bits stored; 7: planar configuration

enum CodecInput {
    static let headerBytes = 8
    static let photometrics = ["MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422"]
    static let bitsAllocated = [8, 16, 32, 12]

    static func codec(_ selector: UInt8) -> any PixelCodec {
        switch selector & 3 {
        case 0: return JPEGTurboCodec(fancyUpsampling: selector & 4 == 0)
        case 1: return JPEGLSCodec()
        case 2: return selector & 4 == 0 ? JPEG2000Codec() : OpenJPHCodec()
        default: return SwiftJPEGCodec()
        }
    }

    static func descriptor(_ h: UnsafeBufferPointer<UInt8>) -> FrameDescriptor {
        FrameDescriptor(rows: Int(h[1]) << 8 | Int(h[2]), columns: Int(h[3]) << 8 | Int(h[4]), samplesPerPixel: Int(h[5]),
                        bitsAllocated: bitsAllocated[Int(h[0] >> 6)], bitsStored: Int(h[6]), isSigned: h[0] & 8 != 0,
                        photometricInterpretation: photometrics[Int(h[0] >> 4) & 3], planarConfiguration: Int(h[7]))
    }

    /// The header that makes `descriptor` and `codec` (0-4; 4 is OpenJPH) come back out of `descriptor(_:)`.
    static func header(codec: Int, _ d: FrameDescriptor) -> [UInt8] {
        let bits = bitsAllocated.firstIndex(of: d.bitsAllocated) ?? 1
        let pi = photometrics.firstIndex(of: d.photometricInterpretation) ?? 0
        let first = UInt8(codec & 7) | (d.isSigned ? 8 : 0) | UInt8(pi << 4) | UInt8(bits << 6)
        return [first, UInt8(d.rows >> 8 & 0xFF), UInt8(d.rows & 0xFF), UInt8(d.columns >> 8 & 0xFF), UInt8(d.columns & 0xFF),
                UInt8(clamping: d.samplesPerPixel), UInt8(clamping: d.bitsStored), UInt8(clamping: d.planarConfiguration)]
    }
}

@_cdecl("radgrid_fuzz_codec_stream")
public func fuzzCodecStream(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= CodecInput.headerBytes else { return 0 }
    let selector = data[0]
    let descriptor = CodecInput.descriptor(UnsafeBufferPointer(start: data, count: CodecInput.headerBytes))
    // The data set's own cap (DecodeOptions.maxOutputBytes) keeps a caller from asking for more.
    let (frameBytes, overflow) = descriptor.rows.multipliedReportingOverflow(by: descriptor.columns * descriptor.samplesPerPixel * descriptor.bytesPerSample)
    guard !overflow, frameBytes <= fuzzMaxOutputBytes else { return 0 }
    let codec = CodecInput.codec(selector)
    let probes = PatientDataProbes()

    // The stream in an allocation of its own, so ASan sees a read before or after it.
    let streamLength = size - CodecInput.headerBytes
    let stream = UnsafeMutableRawBufferPointer.allocate(byteCount: streamLength, alignment: 16)
    defer { stream.deallocate() }
    stream.copyMemory(from: UnsafeRawBufferPointer(start: data + CodecInput.headerBytes, count: streamLength))
    let input = UnsafeRawBufferPointer(stream)

    var validated = true
    do {
        try codec.validate(input, descriptor: descriptor)
    } catch {
        validated = false
        checkCodecFailure(error, "\(type(of: codec)).validate", probes)
    }

    // Exactly the frame: a write past it is a heap overflow ASan reports.
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: frameBytes, alignment: 16)
    defer { output.deallocate() }
    output.initializeMemory(as: UInt8.self, repeating: 0xA5)
    do {
        _ = try codec.decode(input, into: output, descriptor: descriptor)
        if !validated { propertyFailed("\(type(of: codec)).decode succeeded where validate refused the stream") }
    } catch {
        checkCodecFailure(error, "\(type(of: codec)).decode", probes)
    }
    return 0
}

/// Writes seeds into $RADGRID_FUZZ_SEED_DIR: every JPEG (.jpg) and every frame of the
/// compressed DICOM files (.dcm) of the seed sources, with the descriptor that matches it,
/// for each codec that decodes it; JPEG and JPEG 2000 streams also with a comment segment
/// holding planted patient data.
@_cdecl("radgrid_fuzz_codec_init")
public func fuzzCodecInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let dir = FuzzFiles.environment("RADGRID_FUZZ_SEED_DIR") else { return 0 }
    var written = 0
    func emit(_ name: String, codecs: [Int], _ d: FrameDescriptor, _ stream: [UInt8]) {
        guard stream.count + CodecInput.headerBytes <= FuzzFiles.maxSeedBytes else { return }
        let commented = CodecSeeds.withComment(stream)
        for codec in codecs {
            FuzzFiles.write(CodecInput.header(codec: codec, d) + stream, to: "\(dir)/\(name)-c\(codec)")
            written += 1
            if let commented {
                FuzzFiles.write(CodecInput.header(codec: codec, d) + commented, to: "\(dir)/\(name)-c\(codec)-phi")
                written += 1
            }
        }
    }
    for source in FuzzFiles.seedSources {
        for path in FuzzFiles.list(source, suffixes: [".jpg"]) {
            guard let stream = FuzzFiles.read(path, limit: FuzzFiles.maxSeedBytes),
                  let (codecs, d) = CodecSeeds.jpegDescriptor(stream) else { continue }
            emit(FuzzFiles.baseName(path), codecs: codecs, d, stream)
        }
        for path in FuzzFiles.list(source, suffixes: [".dcm"]) {
            guard let bytes = FuzzFiles.read(path, limit: FuzzFiles.maxSeedBytes),
                  let (codecs, d, frames) = CodecSeeds.frames(bytes) else { continue }
            for (i, frame) in frames.prefix(2).enumerated() {
                emit("\(FuzzFiles.baseName(path))-f\(i)", codecs: codecs, d, frame)
            }
        }
    }
    printToStderr("DICOMFuzzing: \(written) codec seeds in \(dir)\n")
    return 0
}

enum CodecSeeds {
    /// The codecs (harness numbers) of a transfer syntax.
    static func codecs(forSyntax uid: String) -> [Int] {
        switch uid {
        case JPEGTurboCodec.baseline: return [0]
        case JPEGTurboCodec.extended: return [0, 3]
        case SwiftJPEGCodec.lossless, SwiftJPEGCodec.losslessSV1: return [3]
        case JPEGLSCodec.lossless, JPEGLSCodec.nearLossless: return [1]
        case JPEG2000Codec.lossless, JPEG2000Codec.lossy: return [2]
        case JPEG2000Codec.htLossless, JPEG2000Codec.htLosslessRPCL, JPEG2000Codec.htLossy: return [2, 4]
        default: return []
        }
    }

    /// A stand-alone JPEG's descriptor (grey or YBR_FULL colour) and the codecs that take it.
    static func jpegDescriptor(_ stream: [UInt8]) -> ([Int], FrameDescriptor)? {
        guard let h = try? stream.withUnsafeBytes({ (b) throws(CodecError) -> JPEGStreamHeader in try JPEGStreamHeader.parse(b) }) else { return nil }
        let d = FrameDescriptor(rows: h.height, columns: h.width, samplesPerPixel: h.components, bitsAllocated: h.precision <= 8 ? 8 : 16,
                                bitsStored: h.precision, isSigned: false,
                                photometricInterpretation: h.components == 3 ? "YBR_FULL" : "MONOCHROME2")
        switch h.frameMarker {
        case 0xC0, 0xC1: return (h.precision == 8 ? [0, 3] : [3], d)
        case 0xC3: return ([3], d)
        case 0xF7: return ([1], d)
        default: return nil
        }
    }

    /// The frames of a compressed DICOM file (one per fragment, or all fragments of a
    /// single-frame image), its descriptor and codecs.
    static func frames(_ bytes: [UInt8]) -> ([Int], FrameDescriptor, [[UInt8]])? {
        guard let file = try? DICOMFile.read(bytes), let enc = file.dataSet[.pixelData]?.encapsulated else { return nil }
        let ds = file.dataSet
        let codecs = codecs(forSyntax: file.transferSyntax.uid)
        guard !codecs.isEmpty, let rows = ds.int(.rows), let columns = ds.int(.columns), let samples = ds.int(.samplesPerPixel),
              let bits = ds.int(.bitsAllocated), let pi = ds.string(.photometricInterpretation) else { return nil }
        let d = FrameDescriptor(rows: rows, columns: columns, samplesPerPixel: samples, bitsAllocated: bits,
                                bitsStored: ds.int(.bitsStored) ?? bits, isSigned: ds.int(.pixelRepresentation) == 1,
                                photometricInterpretation: pi, planarConfiguration: ds.int(.planarConfiguration) ?? 0)
        let frames = (ds.int(.numberOfFrames) ?? 1) > 1 ? enc.fragments : [enc.fragments.flatMap { $0 }]
        return (codecs, d, frames)
    }

    /// The stream with a comment holding planted patient data: a JPEG COM segment after SOI,
    /// or a JPEG 2000 COM segment after SIZ. Nil for other streams.
    static func withComment(_ stream: [UInt8]) -> [UInt8]? {
        let text = Array(seededPatientData[0].utf8)
        if stream.count > 4, stream[0] == 0xFF, stream[1] == 0xD8 {
            let length = text.count + 2
            return [0xFF, 0xD8, 0xFF, 0xFE, UInt8(length >> 8), UInt8(length & 0xFF)] + text + stream[2...]
        }
        guard let h = try? stream.withUnsafeBytes({ (b) throws(CodecError) -> J2KStreamHeader in try J2KStreamHeader.parse(b) }),
              !h.isJP2 else { return nil }
        let siz = h.codestreamOffset + 4
        let end = siz + (Int(stream[siz]) << 8 | Int(stream[siz + 1]))
        let length = text.count + 4  // Lcom, Rcom (1: Latin-1 text), the text
        return Array(stream[..<end]) + [0xFF, 0x64, UInt8(length >> 8), UInt8(length & 0xFF), 0x00, 0x01] + text + stream[end...]
    }
}
