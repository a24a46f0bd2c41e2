/// How a JPEG 2000 decoder's 32-bit samples become the frame's samples, the way pydicom 3
/// with pylibjpeg-openjpeg reports them: each value in a container of 8, 16 or 32 bits by the
/// stream's precision, read with the data set's signedness; and for monochrome data whose
/// stream signedness differs from Pixel Representation, re-extended from the stream's precision.
/// Shared by the OpenJPEG and OpenJPH codecs so both give the same bytes.
struct J2KSampleWriter {
    let bytesPerSample: Int
    let samplesPerPixel: Int
    let signed: Bool
    let shift: Int32
    /// The range of the stream's precision and signedness, for decoders that do not clamp
    /// (OpenJPEG clamps to it after the inverse transform; OpenJPH 0.9 does not).
    let low: Int32
    let high: Int32

    init(precision: Int, streamSigned: Bool, descriptor d: FrameDescriptor) {
        let container = precision <= 8 ? 8 : (precision <= 16 ? 16 : 32)
        let monochrome = d.photometricInterpretation.hasPrefix("MONOCHROME")
        let correct = monochrome && streamSigned != d.isSigned && 8 * d.bytesPerSample > precision
        let kept = correct ? precision : min(container, 8 * d.bytesPerSample)
        bytesPerSample = d.bytesPerSample
        samplesPerPixel = d.samplesPerPixel
        signed = d.isSigned
        shift = Int32(32 - kept)
        let p = Int64(min(precision, 32))
        low = streamSigned ? Int32(clamping: -(Int64(1) << (p - 1))) : 0
        high = streamSigned ? Int32(clamping: (Int64(1) << (p - 1)) - 1) : Int32(clamping: (Int64(1) << p) - 1)
    }

    /// Writes `count` values of component `component` starting at pixel `firstPixel` of the
    /// interleaved little-endian frame at `output`.
    func write(_ source: UnsafePointer<Int32>, count: Int, component: Int, firstPixel: Int,
               into output: UnsafeMutableRawPointer, clamp: Bool) {
        let start = firstPixel * samplesPerPixel + component
        switch bytesPerSample {
        case 1: convert(source, count: count, into: output.assumingMemoryBound(to: UInt8.self) + start, clamp: clamp)
        case 2: convert(source, count: count, into: output.assumingMemoryBound(to: UInt16.self) + start, clamp: clamp)
        default: convert(source, count: count, into: output.assumingMemoryBound(to: UInt32.self) + start, clamp: clamp)
        }
    }

    // One loop per (signedness, clamping) with the branch outside, so each vectorises when
    // the stride is 1 (grey images, the common case).
    @inline(__always)
    private func convert<T: FixedWidthInteger>(_ src: UnsafePointer<Int32>, count: Int, into out: UnsafeMutablePointer<T>, clamp: Bool) {
        let stride = samplesPerPixel, s = shift, lo = low, hi = high
        switch (signed, clamp) {
        case (true, false):
            for i in 0..<count { out[i * stride] = T(truncatingIfNeeded: (src[i] &<< s) &>> s).littleEndian }
        case (true, true):
            for i in 0..<count { out[i * stride] = T(truncatingIfNeeded: (min(max(src[i], lo), hi) &<< s) &>> s).littleEndian }
        case (false, false):
            for i in 0..<count { out[i * stride] = T(truncatingIfNeeded: UInt32(bitPattern: src[i] &<< s) &>> UInt32(bitPattern: s)).littleEndian }
        case (false, true):
            for i in 0..<count {
                out[i * stride] = T(truncatingIfNeeded: UInt32(bitPattern: min(max(src[i], lo), hi) &<< s) &>> UInt32(bitPattern: s)).littleEndian
            }
        }
    }
}
