import DICOMCodecs

/// Frames of encapsulated pixel data (PS3.5 A.4), found the way pydicom 3 finds them.
enum EncapsulatedFrames {
    /// One encoded byte buffer per frame. A frame held in one fragment shares that
    /// fragment's storage; a frame of several fragments is their concatenation.
    ///
    /// In order of preference: the Extended Offset Table (7FE0,0001) with its lengths
    /// (7FE0,0002), one fragment per frame; the Basic Offset Table (fragments from one
    /// offset up to the next belong to a frame); with no table, one fragment is one frame,
    /// N fragments for N frames are one each, all fragments are the one frame of a
    /// single-frame image, and otherwise a frame ends with the fragment whose last 10 bytes
    /// hold a JPEG EOI / JPEG 2000 EOC marker (FF D9). Any disagreement between the frames
    /// found and Number of Frames is an error (pydicom would warn and return what it found).
    static func split(_ enc: EncapsulatedPixelData, frames: Int, dataSet ds: DataSet) throws -> [[UInt8]] {
        let fragments = enc.fragments
        guard !fragments.isEmpty else {
            throw DICOMError.malformed("encapsulated pixel data has no fragments for \(frames) frame(s)", tag: .pixelData)
        }
        if let eot = ds[.extendedOffsetTable]?.bytes, !eot.isEmpty {
            return try splitExtended(fragments, table: eot, lengths: ds[.extendedOffsetTableLengths]?.bytes,
                                     bigEndian: ds.isBigEndian, frames: frames)
        }
        if !enc.basicOffsetTable.isEmpty {
            return try splitBasic(fragments, offsets: enc.basicOffsetTable, frames: frames)
        }
        if fragments.count == 1 {
            guard frames == 1 else {
                throw DICOMError.malformed("1 fragment and no offset table for \(frames) frames", tag: .pixelData)
            }
            return fragments
        }
        if fragments.count == frames { return fragments }
        if frames == 1 { return [concatenate(fragments[...])] }
        guard fragments.count > frames else {
            throw DICOMError.malformed("\(fragments.count) fragments for \(frames) frames and no offset table", tag: .pixelData)
        }
        // Several fragments per frame and no table: a frame's last fragment ends with EOI/EOC.
        var result: [[UInt8]] = []
        var start = 0
        for (i, f) in fragments.enumerated() where endsFrame(f) {
            result.append(start == i ? f : concatenate(fragments[start...i]))
            start = i + 1
        }
        if start < fragments.count { result.append(concatenate(fragments[start...])) }
        guard result.count == frames else {
            throw DICOMError.malformed("found \(result.count) frames (by end-of-image markers) in \(fragments.count) fragments, Number of Frames is \(frames)",
                                       tag: .pixelData)
        }
        return result
    }

    /// pydicom's test for the end of a frame: FF D9 among the fragment's last 10 bytes.
    static func endsFrame(_ fragment: [UInt8]) -> Bool {
        let n = fragment.count
        var i = max(0, n - 10)
        while i + 1 < n {
            if fragment[i] == 0xFF && fragment[i + 1] == 0xD9 { return true }
            i += 1
        }
        return false
    }

    static func concatenate(_ parts: ArraySlice<[UInt8]>) -> [UInt8] {
        var total = 0
        for p in parts { total += p.count }
        var out: [UInt8] = []
        out.reserveCapacity(total)
        for p in parts { out.append(contentsOf: p) }
        return out
    }

    /// Byte offset of each fragment's item tag from the first fragment's item tag.
    static func fragmentStarts(_ fragments: [[UInt8]]) -> [UInt64] {
        var starts: [UInt64] = []
        starts.reserveCapacity(fragments.count)
        var p: UInt64 = 0
        for f in fragments { starts.append(p); p += 8 + UInt64(f.count) }
        return starts
    }

    static func splitBasic(_ fragments: [[UInt8]], offsets: [UInt32], frames: Int) throws -> [[UInt8]] {
        guard offsets.count == frames else {
            throw DICOMError.malformed("basic offset table has \(offsets.count) entries for \(frames) frames", tag: .pixelData)
        }
        for i in 1..<max(1, offsets.count) where offsets[i] <= offsets[i - 1] {
            throw DICOMError.malformed("basic offset table entry \(i) (\(offsets[i])) does not increase", tag: .pixelData)
        }
        let starts = fragmentStarts(fragments)
        var result: [[UInt8]] = []
        result.reserveCapacity(frames)
        var first = 0
        for i in 0..<frames {
            // Frame i holds the fragments that start before the next frame's offset.
            var end = first
            if i + 1 < frames {
                let next = UInt64(offsets[i + 1])
                while end < fragments.count && starts[end] < next { end += 1 }
            } else {
                end = fragments.count
            }
            guard end > first else {
                throw DICOMError.malformed("basic offset table gives frame \(i) no fragment (\(fragments.count) fragments)", tag: .pixelData)
            }
            result.append(end - first == 1 ? fragments[first] : concatenate(fragments[first..<end]))
            first = end
        }
        return result
    }

    static func splitExtended(_ fragments: [[UInt8]], table: [UInt8], lengths: [UInt8]?, bigEndian: Bool, frames: Int) throws -> [[UInt8]] {
        func values(_ bytes: [UInt8], _ tag: Tag) throws -> [UInt64] {
            guard bytes.count % 8 == 0 else {
                throw DICOMError.malformed("\(tag.keyword ?? "table") length \(bytes.count) is not a multiple of 8", tag: tag)
            }
            return stride(from: 0, to: bytes.count, by: 8).map { i in
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(bytes[i + k]) << UInt64(8 * k) }
                return bigEndian ? v.byteSwapped : v
            }
        }
        let offsets = try values(table, .extendedOffsetTable)
        guard offsets.count == frames else {
            throw DICOMError.malformed("extended offset table has \(offsets.count) entries for \(frames) frames", tag: .extendedOffsetTable)
        }
        var sizes: [UInt64]?
        if let lengths, !lengths.isEmpty {
            let l = try values(lengths, .extendedOffsetTableLengths)
            guard l.count == frames else {
                throw DICOMError.malformed("extended offset table lengths has \(l.count) entries for \(frames) frames", tag: .extendedOffsetTableLengths)
            }
            sizes = l
        }
        let starts = fragmentStarts(fragments)
        var index: [UInt64: Int] = [:]
        for (i, s) in starts.enumerated() { index[s] = i }
        var result: [[UInt8]] = []
        result.reserveCapacity(frames)
        for (i, off) in offsets.enumerated() {
            guard let f = index[off] else {
                throw DICOMError.malformed("extended offset table entry \(i) (\(off)) does not point at a fragment", tag: .extendedOffsetTable)
            }
            let fragment = fragments[f]
            if let sizes {
                guard sizes[i] <= UInt64(fragment.count) else {
                    throw DICOMError.malformed("extended offset table length \(sizes[i]) of frame \(i) exceeds its \(fragment.count)-byte fragment",
                                               tag: .extendedOffsetTableLengths)
                }
                result.append(sizes[i] == UInt64(fragment.count) ? fragment : Array(fragment[0..<Int(sizes[i])]))
            } else {
                result.append(fragment)
            }
        }
        return result
    }
}

extension PixelDecoder {
    /// JPEG, JPEG-LS, JPEG 2000 and any other syntax with a registered codec: each frame is
    /// decoded straight into the one output array, then corrected as pydicom does.
    func decodeCompressed(_ enc: EncapsulatedPixelData, layout l: PixelLayout) throws -> DecodedImage {
        let syntax = file.transferSyntax
        let uid = syntax.uid
        let registry = options.codecs
        guard registry.canDecode(uid) else {
            throw DICOMError(code: DICOMError.unsupportedTransferSyntaxCode,
                             message: "cannot decode pixel data in \(syntax.name) (\(uid)): no codec is registered for it", tag: .pixelData)
        }
        guard l.bitsAllocated != 1 else {
            throw DICOMError(code: DICOMError.unsupportedPixelFormatCode, message: "compressed data with Bits Allocated 1 is not supported", tag: .bitsAllocated)
        }
        let descriptor = FrameDescriptor(rows: l.rows, columns: l.columns, samplesPerPixel: l.samples, bitsAllocated: l.bitsAllocated,
                                         bitsStored: l.bitsStored, isSigned: l.signed, photometricInterpretation: l.photometric,
                                         planarConfiguration: l.planar)
        let frameData = try EncapsulatedFrames.split(enc, frames: l.frames, dataSet: ds)
        let frameBytes = descriptor.frameBytes
        var colour: DecodedColour = .asDeclared

        // Every frame's header must agree with the data set before the output is allocated.
        for (i, data) in frameData.enumerated() {
            do {
                try data.withUnsafeBytes { (input) throws -> Void in
                    guard input.count > 0 else { throw CodecError(.corrupt, "frame is empty") }
                    try registry.validate(transferSyntax: uid, input, descriptor: descriptor)
                }
            } catch let error as CodecError {
                throw Self.failure(error, frame: i, layout: l, syntax: syntax)
            }
        }

        // One output array; frame i is decoded into bytes [i × frameBytes, (i+1) × frameBytes).
        func decodeAll(into raw: UnsafeMutableRawBufferPointer) throws {
            for (i, data) in frameData.enumerated() {
                let slice = UnsafeMutableRawBufferPointer(rebasing: raw[(i * frameBytes)..<((i + 1) * frameBytes)])
                do {
                    let c = try data.withUnsafeBytes { (input) throws -> DecodedColour in
                        guard input.count > 0 else { throw CodecError(.corrupt, "frame is empty") }
                        return try registry.decode(transferSyntax: uid, input, into: slice, descriptor: descriptor)
                    }
                    if i == 0 { colour = c }
                } catch let error as CodecError {
                    throw Self.failure(error, frame: i, layout: l, syntax: syntax)
                }
            }
        }
        let total = l.totalValues
        var storage: PixelStorage
        switch (descriptor.bytesPerSample, l.signed) {
        case (1, false): storage = .uint8(try Self.filled(UInt8.self, count: total, decodeAll))
        case (1, true): storage = .int8(try Self.filled(Int8.self, count: total, decodeAll))
        case (2, false): storage = .uint16(try Self.filled(UInt16.self, count: total, decodeAll))
        case (2, true): storage = .int16(try Self.filled(Int16.self, count: total, decodeAll))
        case (_, false): storage = .uint32(try Self.filled(UInt32.self, count: total, decodeAll))
        case (_, true): storage = .int32(try Self.filled(Int32.self, count: total, decodeAll))
        }

        // Unused high bits: pydicom corrects them for JPEG (10918) and RLE-like syntaxes; for
        // JPEG-LS and JPEG 2000 the codec already applied pydicom's sign correction instead.
        if !(Self.jpegLSSyntaxes.contains(uid) || Self.jpeg2000Syntaxes.contains(uid)) && l.bitsStored < 8 * descriptor.bytesPerSample {
            storage.correctUnusedBits(bitsStored: l.bitsStored)
        }
        let photometric = photometricAfterDecoding(colour: colour, firstFrame: frameData[0], layout: l)
        return finish(storage: storage, photometric: photometric, layout: l)
    }

    /// A codec's error as the decoder's: no codec for the stream is an unsupported syntax.
    static func failure(_ error: CodecError, frame i: Int, layout l: PixelLayout, syntax: TransferSyntax) -> DICOMError {
        let code = error.codeValue == .unsupported ? DICOMError.unsupportedTransferSyntaxCode : error.code
        return DICOMError(code: code, message: "\(syntax.name) (\(syntax.uid)) frame \(i) of \(l.frames): \(error.message)", tag: .pixelData)
    }

    /// The colour space of the decoded samples, as pydicom decides it.
    func photometricAfterDecoding(colour: DecodedColour, firstFrame: [UInt8], layout l: PixelLayout) -> String {
        let uid = file.transferSyntax.uid
        var pi = l.photometric
        guard l.samples == 3 else { return pi }
        if colour == .convertedToRGB && !Self.jpeg2000Syntaxes.contains(uid) { return "RGB" }
        if Self.jpegSyntaxes.contains(uid) || Self.jpegLSSyntaxes.contains(uid) {
            // Component IDs 'R','G','B' mean RGB whatever the data set says; a JFIF APP0
            // segment means YCbCr (pydicom's _conform_jpg_colorspace).
            if let header = try? firstFrame.withUnsafeBytes({ (b) throws -> JPEGStreamHeader in try JPEGStreamHeader.parse(b) }) {
                if header.componentIDs == [82, 71, 66] || header.componentIDs == [114, 103, 98] {
                    pi = "RGB"
                } else if header.hasJFIF && !pi.contains("YBR") {
                    pi = uid == JPEGTurboCodec.baseline ? "YBR_FULL_422" : "YBR_FULL"
                }
            }
            // The decoder upsampled any subsampled chroma.
            if pi == "YBR_FULL_422" { pi = "YBR_FULL" }
        }
        if Self.jpeg2000Syntaxes.contains(uid) {
            // pylibjpeg-openjpeg applies the codestream's inverse MCT; pydicom reports RGB.
            if pi == "YBR_ICT" || pi == "YBR_RCT" { pi = "RGB" }
            if pi == "YBR_FULL_422" { pi = "YBR_FULL" }
        }
        return pi
    }

    static let jpegSyntaxes: Set<String> = [JPEGTurboCodec.baseline, JPEGTurboCodec.extended, "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"]
    static let jpegLSSyntaxes: Set<String> = [JPEGLSCodec.lossless, JPEGLSCodec.nearLossless]
    static let jpeg2000Syntaxes: Set<String> = [JPEG2000Codec.lossless, JPEG2000Codec.lossy, "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",
                                                JPEG2000Codec.htLossless, JPEG2000Codec.htLosslessRPCL, JPEG2000Codec.htLossy]

    /// An array of `count` values whose bytes `body` writes in full.
    static func filled<T: FixedWidthInteger>(_ type: T.Type, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> [T] {
        try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.initializeMemory(as: UInt8.self, repeating: 0)  // defined contents even if a codec stops early
            try body(raw)
            initialized = count
        }
    }
}

extension PixelStorage {
    /// pydicom's unused-bits correction: shift left then right by (bits allocated − bits
    /// stored) in the array's own type, clearing (unsigned) or sign-extending (signed).
    mutating func correctUnusedBits(bitsStored: Int) {
        func fix<T: FixedWidthInteger>(_ a: inout [T]) {
            let shift = T(T.bitWidth - bitsStored)
            guard shift > 0 else { return }
            a.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = (p[i] &<< shift) &>> shift } // 0 < shift < bit width: vectorises
            }
        }
        switch self {
        case .uint8(var a): self = .uint8([]); fix(&a); self = .uint8(a)
        case .int8(var a): self = .int8([]); fix(&a); self = .int8(a)
        case .uint16(var a): self = .uint16([]); fix(&a); self = .uint16(a)
        case .int16(var a): self = .int16([]); fix(&a); self = .int16(a)
        case .uint32(var a): self = .uint32([]); fix(&a); self = .uint32(a)
        case .int32(var a): self = .int32([]); fix(&a); self = .int32(a)
        }
    }
}
