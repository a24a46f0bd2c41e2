/// Which codecs decode which transfer syntax. A syntax may have several codecs, tried in
/// registration order: a codec that answers `codec.unsupported` for a stream (e.g. libjpeg-
/// turbo for a 12-bit JPEG Extended stream) passes it to the next; any other error is final.
public struct CodecRegistry: Sendable {
    private var bySyntax: [String: [any PixelCodec]] = [:]

    public init(_ codecs: [any PixelCodec] = []) {
        for codec in codecs { register(codec) }
    }

    /// Every codec of the grid: libjpeg-turbo, CharLS, OpenJPH (HTJ2K, faster) before
    /// OpenJPEG, then the Swift JPEG decoder for what libjpeg-turbo 2.1 lacks (12-bit
    /// extended, lossless process 14).
    public static let standard = CodecRegistry([JPEGTurboCodec(), JPEGLSCodec(), OpenJPHCodec(), JPEG2000Codec(), SwiftJPEGCodec()])

    /// Adds `codec` after any codec already registered for its syntaxes.
    public mutating func register(_ codec: any PixelCodec) {
        for uid in codec.transferSyntaxes { bySyntax[uid, default: []].append(codec) }
    }

    public func codecs(for transferSyntax: String) -> [any PixelCodec] {
        bySyntax[transferSyntax] ?? []
    }

    public func canDecode(_ transferSyntax: String) -> Bool {
        !(bySyntax[transferSyntax]?.isEmpty ?? true)
    }

    /// Every syntax with at least one codec.
    public var transferSyntaxes: [String] { bySyntax.keys.sorted() }

    /// Checks one frame's header with the codecs `decode` would try, in the same order,
    /// without decoding it.
    public func validate(transferSyntax: String, _ input: UnsafeRawBufferPointer, descriptor: FrameDescriptor) throws(CodecError) {
        let candidates = codecs(for: transferSyntax)
        guard !candidates.isEmpty else {
            throw CodecError(.unsupported, "no codec is registered for transfer syntax \(transferSyntax)")
        }
        var reasons: [String] = []
        for codec in candidates {
            do {
                try codec.validate(input, descriptor: descriptor)
                return
            } catch where error.codeValue == .unsupported {
                reasons.append("\(type(of: codec)): \(error.message)")
            }
        }
        throw CodecError(.unsupported, reasons.joined(separator: "; "))
    }

    /// Decodes one frame with the first codec that supports the stream. Throws
    /// `codec.unsupported` when no codec is registered or all refused the stream, naming
    /// each codec's reason.
    public func decode(transferSyntax: String, _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                       descriptor: FrameDescriptor) throws(CodecError) -> DecodedColour {
        let candidates = codecs(for: transferSyntax)
        guard !candidates.isEmpty else {
            throw CodecError(.unsupported, "no codec is registered for transfer syntax \(transferSyntax)")
        }
        var reasons: [String] = []
        for codec in candidates {
            do {
                return try codec.decode(input, into: output, descriptor: descriptor)
            } catch where error.codeValue == .unsupported {
                reasons.append("\(type(of: codec)): \(error.message)")
            }
        }
        throw CodecError(.unsupported, reasons.joined(separator: "; "))
    }
}
