import CJPEGTurboRecovery

/// 8-bit baseline JPEG through libjpeg-turbo, for images made for display (a viewer's
/// `/rendered` request), never for diagnostic pixel data.
public enum JPEGBaselineEncoder {
    /// `pixels`: rows of 8-bit grey (`components` 1) or interleaved RGB (3).
    public static func encode(_ pixels: [UInt8], width: Int, height: Int, components: Int, quality: Int = 90) throws(CodecError) -> [UInt8] {
        guard width > 0, height > 0, width <= 65_500, height <= 65_500, components == 1 || components == 3 else {
            throw CodecError(.unsupported, "JPEG encoding needs 1-65500 × 1-65500 pixels with 1 or 3 components")
        }
        guard pixels.count == width * height * components else {
            throw CodecError(.unsupported, "JPEG encoding: \(pixels.count) bytes for \(width)×\(height)×\(components)")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = pixels.withUnsafeBufferPointer { buffer in
            rg_jpeg_encode_8bit(buffer.baseAddress, UInt32(width), UInt32(height), Int32(components), Int32(max(1, min(100, quality))), &output, &size)
        }
        defer { rg_jpeg_free(output) }
        guard status == 0, let output else { throw CodecError(.corrupt, "libjpeg-turbo could not encode the image") }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
