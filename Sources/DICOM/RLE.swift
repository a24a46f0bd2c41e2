enum Frames {
    /// Splits encapsulated pixel data into one byte buffer per frame, using the Extended
    /// Offset Table, else the Basic Offset Table, else one fragment per frame (or all
    /// fragments for a single frame).
    static func split(_ enc: EncapsulatedPixelData, frames: Int, dataSet ds: DataSet) throws -> [[UInt8]] {
        var offsets: [UInt64] = []
        if let eot = ds[.extendedOffsetTable]?.bytes, !eot.isEmpty {
            guard eot.count % 8 == 0 else { throw DICOMError.malformed("Extended Offset Table length \(eot.count) is not a multiple of 8", tag: .extendedOffsetTable) }
            offsets = stride(from: 0, to: eot.count, by: 8).map { i in
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(eot[i + k]) << UInt64(8 * k) }
                return v
            }
            if ds.isBigEndian { offsets = offsets.map { $0.byteSwapped } }
        } else if !enc.basicOffsetTable.isEmpty {
            offsets = enc.basicOffsetTable.map(UInt64.init)
        }
        if !offsets.isEmpty {
            guard offsets.count == frames else {
                throw DICOMError.malformed("offset table has \(offsets.count) entries for \(frames) frames", tag: .pixelData)
            }
            // Position of each fragment's item tag, relative to the first fragment.
            var starts: [UInt64] = []
            var startIndex: [UInt64: Int] = [:]
            starts.reserveCapacity(enc.fragments.count)
            var p: UInt64 = 0
            for (i, f) in enc.fragments.enumerated() { starts.append(p); startIndex[p] = i; p += 8 + UInt64(f.count) }
            var result: [[UInt8]] = []
            result.reserveCapacity(frames)
            for (i, off) in offsets.enumerated() {
                guard let first = startIndex[off] else {
                    throw DICOMError.malformed("offset table entry \(i) does not point at a fragment", tag: .pixelData)
                }
                let endOff = i + 1 < offsets.count ? offsets[i + 1] : UInt64.max
                guard endOff > off else { throw DICOMError.malformed("offset table is not increasing", tag: .pixelData) }
                var frame: [UInt8] = []
                var j = first
                while j < enc.fragments.count && starts[j] < endOff { frame.append(contentsOf: enc.fragments[j]); j += 1 }
                result.append(frame)
            }
            return result
        }
        if enc.fragments.count == frames { return enc.fragments }
        if frames == 1 { return [enc.fragments.flatMap { $0 }] }
        throw DICOMError.malformed("\(enc.fragments.count) fragments for \(frames) frames and no offset table", tag: .pixelData)
    }
}

/// RLE Lossless (PS3.5 Annex G).
enum RLE {
    /// Decodes every frame into little-endian, sample-interleaved bytes.
    static func decode(frames: [[UInt8]], rows: Int, columns: Int, samples: Int, bytesPerSample: Int) throws -> [UInt8] {
        let pixels = rows * columns
        let segmentsPerFrame = samples * bytesPerSample
        let frameBytes = pixels * segmentsPerFrame
        // A PackBits run emits at most 128 bytes per 2 input bytes: refuse before allocating
        // when the input cannot possibly fill the image.
        var inputBytes = 0
        for f in frames { inputBytes += f.count }
        let totalOut = frameBytes * frames.count
        if totalOut > inputBytes * 64 + 1024 {
            throw DICOMError.malformed("RLE data (\(inputBytes) bytes) is too short for the image size", tag: .pixelData)
        }
        var out = [UInt8](repeating: 0, count: totalOut)
        try out.withUnsafeMutableBufferPointer { dst in
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
        return out
    }
}
