/// A pure-Swift decoder for the JPEG processes Debian's libjpeg-turbo 2.1 lacks: JPEG
/// Lossless (process 14, any predictor; .4.57 and selection value 1 .4.70) and JPEG
/// Extended (processes 2 & 4: Huffman sequential DCT at 8 or 12 bits, .4.51).
///
/// Colour follows pydicom 3.0.2's default `pixel_array`: the reference decoder returns
/// the stream's samples untransformed and pydicom then converts 8-bit YBR_FULL and
/// YBR_FULL_422 to RGB (its own Float32 formula, reproduced here), after conforming the
/// Photometric Interpretation to the stream (component ids "RGB"/"rgb" mean RGB; a JFIF
/// APP0 marker means YCbCr). `.convertedToRGB` is returned whenever the output is RGB
/// while the data set says YBR, so the caller must not convert again.
public struct SwiftJPEGCodec: PixelCodec {
    public init() {}

    public var transferSyntaxes: [String] {
        [Self.extended12Bit, Self.lossless, Self.losslessSV1]
    }

    public static let extended12Bit = "1.2.840.10008.1.2.4.51"
    public static let lossless = "1.2.840.10008.1.2.4.57"
    public static let losslessSV1 = "1.2.840.10008.1.2.4.70"

    public func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                       descriptor: FrameDescriptor) throws(CodecError) -> DecodedColour {
        guard descriptor.rows > 0, descriptor.columns > 0, (1...4).contains(descriptor.samplesPerPixel),
              descriptor.bitsStored >= 1 else {
            throw CodecError(.mismatch, "descriptor \(descriptor.columns)×\(descriptor.rows)×\(descriptor.samplesPerPixel), \(descriptor.bitsStored) bits stored cannot hold a JPEG frame")
        }
        guard output.count >= descriptor.frameBytes, let out = output.baseAddress else {
            throw CodecError(.mismatch, "output buffer has \(output.count) bytes, the frame needs \(descriptor.frameBytes)")
        }
        guard let inputBase = input.baseAddress, input.count >= 4 else {
            throw CodecError(.corrupt, "JPEG stream of \(input.count) bytes is too short")
        }
        var decoder = JPEGDecoder(base: inputBase.assumingMemoryBound(to: UInt8.self), count: input.count,
                                  descriptor: descriptor, output: out)
        let frame = try decoder.decode()
        if frame.process == .sequential {
            decoder.writeSequentialOutput(frame)
        }
        guard descriptor.samplesPerPixel == 3 else { return .asDeclared }
        let ids = frame.components.map(\.id)
        let declared = descriptor.photometricInterpretation
        var effective = declared
        if ids == [82, 71, 66] || ids == [114, 103, 98] {
            effective = "RGB"
        } else if decoder.sawJFIF && !declared.contains("YBR") {
            effective = "YBR_FULL"
        }
        if (effective == "YBR_FULL" || effective == "YBR_FULL_422") && descriptor.bitsAllocated == 8 {
            JPEGColour.convertYBRFullToRGB(out, pixels: descriptor.rows * descriptor.columns)
            return .convertedToRGB
        }
        return effective == "RGB" && declared != "RGB" ? .convertedToRGB : .asDeclared
    }
}

enum JPEGColour {
    /// pydicom 3.0.2's YBR_FULL → RGB (PS3.3 C.7.6.3.1.2): Float32 products summed in
    /// matrix order, floor(x + 0.5), clipped to 0…255.
    static func convertYBRFullToRGB(_ buffer: UnsafeMutableRawPointer, pixels: Int) {
        let gFromCb = Float(-0.114 * 1.772 / 0.587), gFromCr = Float(-0.299 * 1.402 / 0.587)
        let rFromCr = Float(1.402), bFromCb = Float(1.772)
        let p = buffer.assumingMemoryBound(to: UInt8.self)
        @inline(__always) func clip(_ v: Float) -> UInt8 {
            let r = (v + 0.5).rounded(.down)
            return r <= 0 ? 0 : (r >= 255 ? 255 : UInt8(r))
        }
        for i in 0..<pixels {
            let y = Float(p[i * 3]), cb = Float(p[i * 3 + 1]) - 128, cr = Float(p[i * 3 + 2]) - 128
            let r = y + cb * 0 + cr * rFromCr
            let g = y + cb * gFromCb + cr * gFromCr
            let b = y + cb * bFromCb + cr * 0
            p[i * 3] = clip(r)
            p[i * 3 + 1] = clip(g)
            p[i * 3 + 2] = clip(b)
        }
    }
}
