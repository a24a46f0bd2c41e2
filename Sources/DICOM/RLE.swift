/// RLE Lossless (PS3.5 Annex G).
enum RLE {
    /// A PackBits run emits at most 128 bytes per 2 input bytes: refuses, before the caller
    /// allocates the output, input that cannot possibly fill `outputBytes`.
    static func checkInputSize(frames: [[UInt8]], outputBytes: Int) throws {
        var inputBytes = 0
        for f in frames { inputBytes += f.count }
        if outputBytes > inputBytes * 64 + 1024 {
            throw DICOMError.malformed("RLE data (\(inputBytes) bytes) is too short for the image size", tag: .pixelData)
        }
    }

    /// Decodes every frame into `output` (little-endian, sample-interleaved; exactly
    /// rows × columns × samples × bytesPerSample × frames bytes, every one written on success).
    static func decode(frames: [[UInt8]], rows: Int, columns: Int, samples: Int, bytesPerSample: Int,
                       into output: UnsafeMutableRawBufferPointer) throws {
        let pixels = rows * columns
        let segmentsPerFrame = samples * bytesPerSample
        let frameBytes = pixels * segmentsPerFrame
        let totalOut = frameBytes * frames.count
        try checkInputSize(frames: frames, outputBytes: totalOut)
        guard output.count == totalOut else {
            throw DICOMError.malformed("RLE output buffer has \(output.count) bytes, \(totalOut) needed", tag: .pixelData)
        }
        do {
            let dst = output // byte stores through the raw buffer, whatever type the memory holds
            for (f, data) in frames.enumerated() {
                guard data.count >= 64 else { throw DICOMError.truncated("RLE frame \(f) has no 64-byte header", offset: 0, tag: .pixelData) }
                func le32(_ i: Int) -> Int {
                    let b0 = Int(data[i]), b1 = Int(data[i + 1]) << 8
                    let b2 = Int(data[i + 2]) << 16, b3 = Int(data[i + 3]) << 24
                    return b0 | b1 | b2 | b3
                }
                let count = le32(0)
                guard count == segmentsPerFrame else {
                    throw DICOMError.malformed("RLE frame \(f) has \(count) segments, \(segmentsPerFrame) expected", tag: .pixelData)
                }
                let base = f * frameBytes
                for seg in 0..<count {
                    let start = le32(4 + 4 * seg)
                    let end = seg + 1 < count ? le32(8 + 4 * seg) : data.count
                    guard start >= 64, start <= end, end <= data.count else {
                        throw DICOMError.malformed("RLE frame \(f) segment \(seg) offsets \(start)..<\(end) are invalid", tag: .pixelData)
                    }
                    // Segments run most significant byte first for each sample.
                    let sample = seg / bytesPerSample
                    let byteInSample = bytesPerSample - 1 - seg % bytesPerSample
                    let stride = samples * bytesPerSample
                    var o = base + sample * bytesPerSample + byteInSample
                    var written = 0
                    var i = start
                    try data.withUnsafeBufferPointer { src in
                        while i < end && written < pixels {
                            let n = Int(Int8(bitPattern: src[i]))
                            i += 1
                            if n >= 0 {
                                let run = n + 1
                                guard i + run <= end else { throw DICOMError.malformed("RLE literal run overruns segment \(seg) of frame \(f)", tag: .pixelData) }
                                let take = min(run, pixels - written)
                                for k in 0..<take { dst[o] = src[i + k]; o += stride }
                                written += take
                                i += run
                            } else if n != -128 {
                                guard i < end else { throw DICOMError.malformed("RLE replicate run overruns segment \(seg) of frame \(f)", tag: .pixelData) }
                                let run = 1 - n
                                let v = src[i]
                                i += 1
                                let take = min(run, pixels - written)
                                for _ in 0..<take { dst[o] = v; o += stride }
                                written += take
                            }
                        }
                    }
                    guard written == pixels else {
                        throw DICOMError.malformed("RLE segment \(seg) of frame \(f) decodes to \(written) bytes, \(pixels) expected", tag: .pixelData)
                    }
                }
            }
        }
    }
}
