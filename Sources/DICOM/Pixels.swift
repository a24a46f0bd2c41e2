import DICOMCodecs

/// Decoded pixel values, one typed array for all frames, samples interleaved
/// (frame-major, then row, column, sample).
public enum PixelStorage: Sendable, Equatable {
    case uint8([UInt8])
    case int8([Int8])
    case uint16([UInt16])
    case int16([Int16])
    case uint32([UInt32])
    case int32([Int32])

    public var count: Int {
        switch self {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .uint16(let a): return a.count
        case .int16(let a): return a.count
        case .uint32(let a): return a.count
        case .int32(let a): return a.count
        }
    }
}

public struct PixelStatistics: Sendable, Equatable {
    public let min: Double
    public let max: Double
    public let mean: Double
}

/// Pixel data decoded to integers, pydicom's default conventions: colour as RGB (YBR_FULL and
/// YBR_FULL_422 converted), planar configuration undone, unused high bits cleared (unsigned)
/// or sign-extended from Bits Stored (signed).
public struct DecodedImage: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public let frames: Int
    public let samplesPerPixel: Int
    public let bitsAllocated: Int
    public let bitsStored: Int
    public let isSigned: Bool
    /// Photometric interpretation of `storage` ("RGB" after a YBR conversion).
    public let photometricInterpretation: String
    public let storage: PixelStorage

    /// (frames, rows, columns, samples) with frames and samples dropped when 1 (pydicom's shape).
    public var shape: [Int] {
        var s: [Int] = []
        if frames > 1 { s.append(frames) }
        s.append(rows)
        s.append(columns)
        if samplesPerPixel > 1 { s.append(samplesPerPixel) }
        return s
    }

    /// numpy-style dtype name: uint8, int8, uint16, int16, uint32, int32.
    public var dtype: String {
        switch storage {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        }
    }

    /// The array's bytes in little-endian order (what pydicom's array hashes to).
    public func littleEndianBytes() -> [UInt8] { littleEndianBytes(values: 0..<storage.count) }

    /// One frame's bytes (0-based) in little-endian order, without packing the other frames.
    public func littleEndianBytes(frame: Int) -> [UInt8] {
        let perFrame = rows * columns * samplesPerPixel
        return littleEndianBytes(values: frame * perFrame..<(frame + 1) * perFrame)
    }

    func littleEndianBytes(values range: Range<Int>) -> [UInt8] {
        func pack<T: FixedWidthInteger>(_ a: ArraySlice<T>) -> [UInt8] {
            let w = MemoryLayout<T>.size
            return [UInt8](unsafeUninitializedCapacity: a.count * w) { buf, n in
                a.withUnsafeBufferPointer { src in
                    for i in 0..<src.count {
                        let v = UInt64(truncatingIfNeeded: src[i])
                        for k in 0..<w { buf[i * w + k] = UInt8(truncatingIfNeeded: v >> UInt64(8 * k)) }
                    }
                }
                n = a.count * w
            }
        }
        switch storage {
        case .uint8(let a): return Array(a[range])
        case .int8(let a): return a[range].map { UInt8(bitPattern: $0) }
        case .uint16(let a): return pack(a[range])
        case .int16(let a): return pack(a[range])
        case .uint32(let a): return pack(a[range])
        case .int32(let a): return pack(a[range])
        }
    }

    /// Min, max and mean over every value (the mean is exact: integer sum / count).
    public func statistics() -> PixelStatistics {
        func stats<T: FixedWidthInteger>(_ a: [T]) -> PixelStatistics {
            guard !a.isEmpty else { return PixelStatistics(min: 0, max: 0, mean: 0) }
            var lo = a[0], hi = a[0]
            var sum: Int64 = 0
            var big: Double = 0
            a.withUnsafeBufferPointer { p in
                for v in p {
                    if v < lo { lo = v }
                    if v > hi { hi = v }
                    let (s, o) = sum.addingReportingOverflow(Int64(v))
                    if o { big += Double(sum); sum = Int64(v) } else { sum = s }
                }
            }
            return PixelStatistics(min: Double(lo), max: Double(hi), mean: (big + Double(sum)) / Double(a.count))
        }
        switch storage {
        case .uint8(let a): return stats(a)
        case .int8(let a): return stats(a)
        case .uint16(let a): return stats(a)
        case .int16(let a): return stats(a)
        case .uint32(let a): return stats(a)
        case .int32(let a): return stats(a)
        }
    }
}

public struct DecodeOptions: Sendable {
    /// Largest decoded array (in bytes) the decoder will allocate.
    public var maxOutputBytes: Int
    /// Convert YBR_FULL / YBR_FULL_422 (8-bit) to RGB, as pydicom does by default.
    public var convertYBRToRGB: Bool
    /// Codecs for compressed (encapsulated) transfer syntaxes other than RLE Lossless.
    public var codecs: CodecRegistry

    public init(maxOutputBytes: Int = 1 << 30, convertYBRToRGB: Bool = true, codecs: CodecRegistry = .standard) {
        self.maxOutputBytes = maxOutputBytes
        self.convertYBRToRGB = convertYBRToRGB
        self.codecs = codecs
    }
}

extension DICOMFile {
    /// Decodes native (uncompressed, incl. deflated), RLE Lossless and, through
    /// `options.codecs`, compressed pixel data (JPEG, JPEG-LS, JPEG 2000, HTJ2K). Syntaxes
    /// with no codec (MPEG/HEVC video, ...) throw `dicom.unsupportedTransferSyntax`; a codec's
    /// failure is a `DICOMError` carrying the codec's code (`codec.corrupt`, `codec.mismatch`, ...).
    public func decodePixels(options: DecodeOptions = DecodeOptions()) throws -> DecodedImage {
        try PixelDecoder(file: self, options: options).decode()
    }

    /// Checks, without decoding, that the pixel data can be decoded: the transfer syntax has a
    /// codec, the Image Pixel module is consistent, the frames are found and each frame's own
    /// header agrees with the data set (the gateway refuses at the door what could never be
    /// decoded). A data set without pixel data passes (it is not an image).
    public func checkPixelsDecodable(options: DecodeOptions = DecodeOptions()) throws {
        try PixelDecoder(file: self, options: options).check()
    }
}

/// The Image Pixel module attributes that shape the decoded array, validated.
struct PixelLayout {
    let rows: Int
    let columns: Int
    let samples: Int
    let bitsAllocated: Int
    let bitsStored: Int
    let signed: Bool
    let photometric: String
    let frames: Int
    let planar: Int
    /// rows × columns × samples × frames.
    let totalValues: Int
    /// Decoded array size in bytes.
    let outputBytes: Int
}

struct PixelDecoder {
    let file: DICOMFile
    let options: DecodeOptions
    var ds: DataSet { file.dataSet }

    func required(_ tag: Tag) throws -> Int {
        guard let v = ds.int(tag) else { throw DICOMError.missing(tag) }
        return v
    }

    func layout() throws -> PixelLayout {
        let bitsAllocated = try required(.bitsAllocated)
        let rows = try required(.rows)
        let columns = try required(.columns)
        let samples = try required(.samplesPerPixel)
        let pixelRepresentation = try required(.pixelRepresentation)
        guard let photometric = ds.string(.photometricInterpretation) else { throw DICOMError.missing(.photometricInterpretation) }
        let bitsStored = ds.int(.bitsStored) ?? bitsAllocated
        let frames = max(1, ds.int(.numberOfFrames) ?? 1)
        let planar = ds.int(.planarConfiguration) ?? 0

        guard [1, 8, 16, 32].contains(bitsAllocated) else {
            throw DICOMError(code: DICOMError.unsupportedPixelFormatCode, message: "Bits Allocated \(bitsAllocated) is not supported (1, 8, 16, 32)", tag: .bitsAllocated)
        }
        guard bitsStored >= 1, bitsStored <= bitsAllocated else {
            throw DICOMError.malformed("Bits Stored \(bitsStored) is outside 1...\(bitsAllocated)", tag: .bitsStored)
        }
        guard rows > 0, columns > 0, rows <= 65535, columns <= 65535 else {
            throw DICOMError.malformed("invalid image size \(rows) x \(columns)", tag: .rows)
        }
        guard samples == 1 || samples == 3 else {
            throw DICOMError(code: DICOMError.unsupportedPixelFormatCode, message: "Samples per Pixel \(samples) is not supported (1 or 3)", tag: .samplesPerPixel)
        }
        guard pixelRepresentation == 0 || pixelRepresentation == 1 else {
            throw DICOMError.malformed("Pixel Representation \(pixelRepresentation) is not 0 or 1", tag: .pixelRepresentation)
        }
        guard frames <= 1_000_000 else { throw DICOMError.limit("Number of Frames \(frames) is implausible", tag: .numberOfFrames) }
        let bps = max(1, bitsAllocated / 8)
        let (valuesPerFrame, o1) = (rows * columns).multipliedReportingOverflow(by: samples)
        let (totalValues, o2) = valuesPerFrame.multipliedReportingOverflow(by: frames)
        let (outBytes, o3) = totalValues.multipliedReportingOverflow(by: bps)
        if o1 || o2 || o3 || outBytes > options.maxOutputBytes {
            throw DICOMError.limit("decoded pixel data would exceed \(options.maxOutputBytes) bytes", tag: .pixelData)
        }
        return PixelLayout(rows: rows, columns: columns, samples: samples, bitsAllocated: bitsAllocated, bitsStored: bitsStored,
                           signed: pixelRepresentation == 1, photometric: photometric, frames: frames, planar: planar,
                           totalValues: totalValues, outputBytes: outBytes)
    }

    func check() throws {
        guard let element = ds[.pixelData] else { return }
        let syntax = file.transferSyntax
        let isRLE = syntax.uid == TransferSyntax.rleLossless.uid
        if syntax.isEncapsulated && !isRLE && !options.codecs.canDecode(syntax.uid) {
            throw DICOMError(code: DICOMError.unsupportedTransferSyntaxCode,
                             message: "cannot decode pixel data in \(syntax.name) (\(syntax.uid)): no codec is registered for it", tag: .pixelData)
        }
        let l = try layout()
        guard syntax.isEncapsulated else {
            guard let raw = element.bytes else { throw DICOMError.malformed("native pixel data is encapsulated", tag: .pixelData) }
            let needed = l.bitsAllocated == 1 ? (l.totalValues + 7) / 8
                : (l.photometric == "YBR_FULL_422" && l.samples == 3 ? l.outputBytes / 3 * 2 : l.outputBytes)
            guard raw.count >= needed || file.truncation != nil else {
                throw DICOMError.truncated("pixel data has \(raw.count) bytes, \(needed) needed", offset: element.offset, tag: .pixelData)
            }
            return
        }
        guard let enc = element.encapsulated else { throw DICOMError.malformed("\(syntax.name) pixel data is not encapsulated", tag: .pixelData) }
        let frames = try EncapsulatedFrames.split(enc, frames: l.frames, dataSet: ds)
        guard !isRLE else { return }
        let descriptor = FrameDescriptor(rows: l.rows, columns: l.columns, samplesPerPixel: l.samples, bitsAllocated: l.bitsAllocated,
                                         bitsStored: l.bitsStored, isSigned: l.signed, photometricInterpretation: l.photometric,
                                         planarConfiguration: l.planar)
        for (i, data) in frames.enumerated() {
            do {
                try data.withUnsafeBytes { (input) throws -> Void in
                    guard input.count > 0 else { throw CodecError(.corrupt, "frame is empty") }
                    try options.codecs.validate(transferSyntax: syntax.uid, input, descriptor: descriptor)
                }
            } catch let error as CodecError {
                throw Self.failure(error, frame: i, layout: l, syntax: syntax)
            }
        }
    }

    func decode() throws -> DecodedImage {
        guard let element = ds[.pixelData] else {
            if file.stoppedBeforePixelData {
                throw DICOMError(code: DICOMError.noPixelDataCode, message: "pixel data was not read (header-only read)", tag: .pixelData)
            }
            throw DICOMError(code: DICOMError.noPixelDataCode, message: "data set has no (7FE0,0010) Pixel Data", tag: .pixelData)
        }
        let syntax = file.transferSyntax
        let isRLE = syntax.uid == TransferSyntax.rleLossless.uid
        if syntax.isEncapsulated && !isRLE && !options.codecs.canDecode(syntax.uid) {
            throw DICOMError(code: DICOMError.unsupportedTransferSyntaxCode,
                             message: "cannot decode pixel data in \(syntax.name) (\(syntax.uid)): no codec is registered for it",
                             tag: .pixelData)
        }
        let l = try layout()
        let (rows, columns, samples, bitsAllocated, frames) = (l.rows, l.columns, l.samples, l.bitsAllocated, l.frames)
        let (photometric, planar, totalValues, outBytes) = (l.photometric, l.planar, l.totalValues, l.outputBytes)
        let bps = max(1, bitsAllocated / 8)
        let pixelsPerFrame = rows * columns
        var photometricOut = photometric
        var le: [UInt8]
        if syntax.isEncapsulated {
            guard let enc = element.encapsulated else {
                throw DICOMError.malformed("\(syntax.name) pixel data is not encapsulated", tag: .pixelData)
            }
            if !isRLE { return try decodeCompressed(enc, layout: l) }
            guard bitsAllocated != 1 else {
                throw DICOMError(code: DICOMError.unsupportedPixelFormatCode, message: "RLE with Bits Allocated 1 is not supported", tag: .bitsAllocated)
            }
            let frameData = try EncapsulatedFrames.split(enc, frames: frames, dataSet: ds)
            if photometric == "YBR_FULL_422" { photometricOut = "YBR_FULL" }  // RLE stores full-resolution chroma
            try RLE.checkInputSize(frames: frameData, outputBytes: outBytes) // before allocating the output
            // Segments are decoded straight into the typed array's bytes (no byte array to convert).
            let decode = { (raw: UnsafeMutableRawBufferPointer) throws -> Void in
                try RLE.decode(frames: frameData, rows: rows, columns: columns, samples: samples, bytesPerSample: bps, into: raw)
            }
            var storage: PixelStorage
            switch (bps, l.signed) {
            case (1, false): storage = .uint8(try Self.filled(UInt8.self, count: totalValues, decode))
            case (1, true): storage = .int8(try Self.filled(Int8.self, count: totalValues, decode))
            case (2, false): storage = .uint16(try Self.filled(UInt16.self, count: totalValues, decode))
            case (2, true): storage = .int16(try Self.filled(Int16.self, count: totalValues, decode))
            case (_, false): storage = .uint32(try Self.filled(UInt32.self, count: totalValues, decode))
            case (_, true): storage = .int32(try Self.filled(Int32.self, count: totalValues, decode))
            }
            if l.bitsStored < 8 * bps { storage.correctUnusedBits(bitsStored: l.bitsStored) }
            return finish(storage: storage, photometric: photometricOut, layout: l)
        } else {
            guard let raw = element.bytes else {
                throw DICOMError.malformed("native pixel data is encapsulated", tag: .pixelData)
            }
            if bitsAllocated == 1 {
                guard samples == 1 else { throw DICOMError(code: DICOMError.unsupportedPixelFormatCode, message: "1-bit colour data", tag: .samplesPerPixel) }
                let needed = (totalValues + 7) / 8
                guard raw.count >= needed else {
                    throw DICOMError.truncated("pixel data has \(raw.count) bytes, \(needed) needed", offset: element.offset, tag: .pixelData)
                }
                var out = [UInt8](repeating: 0, count: totalValues)
                raw.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        for i in 0..<totalValues { dst[i] = (src[i >> 3] >> UInt8(i & 7)) & 1 }
                    }
                }
                return DecodedImage(rows: rows, columns: columns, frames: frames, samplesPerPixel: 1, bitsAllocated: 1,
                                    bitsStored: 1, isSigned: false, photometricInterpretation: photometric, storage: .uint8(out))
            }
            let is422 = photometric == "YBR_FULL_422" && samples == 3
            let needed = is422 ? outBytes / 3 * 2 : outBytes
            guard raw.count >= needed else {
                throw DICOMError.truncated("pixel data has \(raw.count) bytes, \(needed) needed", offset: element.offset, tag: .pixelData)
            }
            if !file.dataSet.isBigEndian && !is422 && !(samples == 3 && planar == 1) {
                // The commonest case: little-endian values as stored, one copy into the typed array.
                let storage = raw.withUnsafeBytes { Native.typed(UnsafeRawBufferPointer(rebasing: $0[0..<needed]), bytesPerSample: bps,
                                                                 bitsStored: l.bitsStored, signed: l.signed) }
                return finish(storage: storage, photometric: photometricOut, layout: l)
            }
            if file.dataSet.isBigEndian && bps == 1 && element.vr == .OW {
                // 8-bit samples in an OW value: big endian swaps each 16-bit word.
                var words = Array(raw[0..<(raw.count - raw.count % 2)])
                Native.swapInPlace(&words, width: 2)
                guard words.count >= needed else {
                    throw DICOMError.truncated("pixel data has \(raw.count) bytes, \(needed) needed", offset: element.offset, tag: .pixelData)
                }
                le = Array(words[0..<needed])
            } else {
                le = Array(raw[0..<needed])
            }
            if file.dataSet.isBigEndian && bps > 1 { Native.swapInPlace(&le, width: bps) }
            if is422 {
                guard columns % 2 == 0 else { throw DICOMError.malformed("YBR_FULL_422 with odd Columns \(columns)", tag: .columns) }
                le = Native.expand422(le, bytesPerSample: bps)
                photometricOut = "YBR_FULL"
            } else if samples == 3 && planar == 1 {
                le = Native.interleave(le, frames: frames, pixelsPerFrame: pixelsPerFrame, bytesPerSample: bps)
            }
        }
        let storage = Native.typed(le, bytesPerSample: bps, bitsStored: l.bitsStored, signed: l.signed)
        return finish(storage: storage, photometric: photometricOut, layout: l)
    }

    /// Colour conversion pydicom applies by default, then the image.
    func finish(storage: PixelStorage, photometric: String, layout l: PixelLayout) -> DecodedImage {
        var storage = storage
        var photometricOut = photometric
        if options.convertYBRToRGB, l.samples == 3, photometricOut == "YBR_FULL", case .uint8(var a) = storage {
            storage = .uint8([])
            Color.ybrFullToRGB(&a)
            storage = .uint8(a)
            photometricOut = "RGB"
        }
        return DecodedImage(rows: l.rows, columns: l.columns, frames: l.frames, samplesPerPixel: l.samples, bitsAllocated: l.bitsAllocated,
                            bitsStored: l.bitsStored, isSigned: l.signed, photometricInterpretation: photometricOut, storage: storage)
    }
}

enum Native {
    static func swapInPlace(_ a: inout [UInt8], width: Int) {
        a.withUnsafeMutableBufferPointer { p in
            var i = 0
            let n = p.count - p.count % width
            while i < n {
                var lo = i, hi = i + width - 1
                while lo < hi { p.swapAt(lo, hi); lo += 1; hi -= 1 }
                i += width
            }
        }
    }

    /// Y1 Y2 Cb Cr → Y1 Cb Cr Y2 Cb Cr (PS3.3 C.7.6.3.1.2).
    static func expand422(_ a: [UInt8], bytesPerSample w: Int) -> [UInt8] {
        let groups = a.count / (4 * w)
        return [UInt8](unsafeUninitializedCapacity: groups * 6 * w) { out, n in
            a.withUnsafeBufferPointer { src in
                for g in 0..<groups {
                    let s = g * 4 * w, d = g * 6 * w
                    for k in 0..<w {
                        let y1 = src[s + k], y2 = src[s + w + k], cb = src[s + 2 * w + k], cr = src[s + 3 * w + k]
                        out[d + k] = y1; out[d + w + k] = cb; out[d + 2 * w + k] = cr
                        out[d + 3 * w + k] = y2; out[d + 4 * w + k] = cb; out[d + 5 * w + k] = cr
                    }
                }
            }
            n = groups * 6 * w
        }
    }

    /// Planar configuration 1 (RRR…GGG…BBB… per frame) → interleaved.
    static func interleave(_ a: [UInt8], frames: Int, pixelsPerFrame: Int, bytesPerSample w: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: a.count)
        let frameBytes = pixelsPerFrame * 3 * w
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for f in 0..<frames {
                    let base = f * frameBytes
                    for s in 0..<3 {
                        let plane = base + s * pixelsPerFrame * w
                        for p in 0..<pixelsPerFrame {
                            for k in 0..<w { dst[base + (p * 3 + s) * w + k] = src[plane + p * w + k] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Little-endian bytes → typed values with unused bits corrected (pydicom semantics:
    /// shift left then right by BitsAllocated − BitsStored in the output type).
    static func typed(_ a: [UInt8], bytesPerSample w: Int, bitsStored: Int, signed: Bool) -> PixelStorage {
        if w == 1 && !signed && bitsStored >= 8 { return .uint8(a) } // already the array wanted
        return a.withUnsafeBytes { typed($0, bytesPerSample: w, bitsStored: bitsStored, signed: signed) }
    }

    /// The same from any little-endian bytes: one copy into the typed array, then the
    /// unused-bits correction in place (both loops vectorise).
    static func typed(_ a: UnsafeRawBufferPointer, bytesPerSample w: Int, bitsStored: Int, signed: Bool) -> PixelStorage {
        let n = a.count / w
        func load<T: FixedWidthInteger>(_ type: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: n) { out, count in
                #if _endian(little)
                if n > 0 { UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: a[0..<(n * w)])) }
                #else
                for i in 0..<n { out[i] = T(littleEndian: a.loadUnaligned(fromByteOffset: i * w, as: T.self)) }
                #endif
                count = n
            }
        }
        var storage: PixelStorage
        switch (w, signed) {
        case (1, false): storage = .uint8(load(UInt8.self))
        case (1, true): storage = .int8(load(Int8.self))
        case (2, false): storage = .uint16(load(UInt16.self))
        case (2, true): storage = .int16(load(Int16.self))
        case (_, false): storage = .uint32(load(UInt32.self))
        case (_, true): storage = .int32(load(Int32.self))
        }
        if bitsStored < 8 * w { storage.correctUnusedBits(bitsStored: bitsStored) }
        return storage
    }
}

enum Color {
    /// YBR_FULL → RGB for 8-bit data with the same float32 arithmetic pydicom uses
    /// (PS3.3 C.7.6.3.1.2 coefficients, round half up, clip to 0…255).
    static func ybrFullToRGB(_ a: inout [UInt8]) {
        let cbG = Float(-0.114 * 1.772 / 0.587)
        let crG = Float(-0.299 * 1.402 / 0.587)
        let cbB = Float(1.772)
        let crR = Float(1.402)
        a.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                let y = Float(p[i]), cb = Float(p[i + 1]) - 128, cr = Float(p[i + 2]) - 128
                let r = (y + cb * 0) + cr * crR
                let g = (y + cb * cbG) + cr * crG
                let b = (y + cb * cbB) + cr * 0
                p[i] = clip(r); p[i + 1] = clip(g); p[i + 2] = clip(b)
                i += 3
            }
        }
    }

    @inline(__always) static func clip(_ v: Float) -> UInt8 {
        let f = (v + 0.5).rounded(.down)
        return f <= 0 ? 0 : (f >= 255 ? 255 : UInt8(f))
    }
}
