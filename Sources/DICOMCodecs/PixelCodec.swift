import RadGridCore

/// What a codec must know about one frame of encapsulated pixel data, taken from the data
/// set's Image Pixel module. The codec checks the stream against it: a stream whose own
/// header disagrees (size, components, precision) is refused with `codec.mismatch`.
public struct FrameDescriptor: Sendable, Hashable {
    public var rows: Int
    public var columns: Int
    public var samplesPerPixel: Int
    /// 8 or 16 (a codec's output sample width is `bitsAllocated / 8` bytes).
    public var bitsAllocated: Int
    public var bitsStored: Int
    /// Pixel Representation 1.
    public var isSigned: Bool
    /// The data set's Photometric Interpretation (e.g. `YBR_FULL_422` for JPEG baseline colour).
    public var photometricInterpretation: String
    public var planarConfiguration: Int

    public init(rows: Int, columns: Int, samplesPerPixel: Int, bitsAllocated: Int, bitsStored: Int, isSigned: Bool,
                photometricInterpretation: String, planarConfiguration: Int = 0) {
        self.rows = rows
        self.columns = columns
        self.samplesPerPixel = samplesPerPixel
        self.bitsAllocated = bitsAllocated
        self.bitsStored = bitsStored
        self.isSigned = isSigned
        self.photometricInterpretation = photometricInterpretation
        self.planarConfiguration = planarConfiguration
    }

    public var bytesPerSample: Int { bitsAllocated <= 8 ? 1 : (bitsAllocated <= 16 ? 2 : 4) }

    /// Bytes of one decoded frame: rows × columns × samples × bytes per sample.
    public var frameBytes: Int { rows * columns * samplesPerPixel * bytesPerSample }
}

/// What a codec did to the colour of a frame, so the caller reports pixels the way the
/// reference (pydicom's `pixel_array`) does.
public enum DecodedColour: Sendable, Hashable {
    /// Samples are as the data set's Photometric Interpretation says.
    case asDeclared
    /// The codec converted the samples to RGB (e.g. a JPEG decoder's YCbCr → RGB).
    case convertedToRGB
}

/// One decoder for a family of transfer syntaxes. Decoding writes exactly
/// `descriptor.frameBytes` bytes into `output`: samples little-endian, colour interleaved
/// (R G B R G B …) whatever the stream's own layout, signed values in two's complement.
/// It never allocates more than the declared frame size plus the library's bounded
/// working memory, never reads outside `input`, and reports bad streams as `CodecError`.
public protocol PixelCodec: Sendable {
    /// Transfer syntax UIDs this codec decodes.
    var transferSyntaxes: [String] { get }
    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                descriptor: FrameDescriptor) throws(CodecError) -> DecodedColour
    /// Reads only the stream's header and refuses it as `decode` would (`codec.mismatch`,
    /// `codec.corrupt`, `codec.unsupported`), so a caller can check every frame of a data
    /// set before it allocates the decoded array (a data set declaring 20000 × 20000 pixels
    /// over a 9 KB stream is refused without touching 800 MB). The default accepts every
    /// stream, so a codec without a cheap header check need not implement it.
    func validate(_ input: UnsafeRawBufferPointer, descriptor: FrameDescriptor) throws(CodecError)
}

extension PixelCodec {
    public func validate(_ input: UnsafeRawBufferPointer, descriptor: FrameDescriptor) throws(CodecError) {}
}

/// Errors of the codecs. Messages name the problem (marker, offset, sizes), never pixel
/// values or patient data.
public struct CodecError: CodedError, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        /// The stream is malformed or truncated.
        public static let corrupt = Code(rawValue: "codec.corrupt")
        /// The stream uses a feature this codec does not decode (e.g. arithmetic coding).
        public static let unsupported = Code(rawValue: "codec.unsupported")
        /// The stream's own header disagrees with the data set (size, components, precision).
        public static let mismatch = Code(rawValue: "codec.mismatch")
        /// Decoding would exceed a size limit.
        public static let limit = Code(rawValue: "codec.limit")
    }

    public let codeValue: Code
    public let message: String
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, _ message: String) {
        self.codeValue = code
        self.message = message
    }
}
