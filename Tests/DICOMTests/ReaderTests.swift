import Testing
import CZlib
@testable import DICOM

@Suite("Reader")
struct ReaderTests {
    typealias S = Synthetic

    @Test("implicit VR little endian without meta header is guessed and uses the dictionary")
    func implicitNoMeta() throws {
        let body = S.implicitLE(0x0008, 0x0060, S.text("MR")) + S.implicitLE(0x0028, 0x0010, S.le16(256))
            + S.implicitLE(0x0028, 0x0011, S.le16(128))
        let file = try DICOMFile.read(body)
        #expect(file.meta.isEmpty && file.transferSyntaxUID == nil)
        #expect(file.transferSyntax == .implicitVRLittleEndian)
        #expect(file.dataSet[.rows]?.vr == .US)
        #expect(file.dataSet.int(.rows) == 256)
        #expect(file.dataSet["Columns"]?.tag == .columns)
        #expect(file.dataSet.string(.modality) == "MR")
    }

    @Test("explicit VR big endian without meta is detected; numbers use big-endian order")
    func explicitBigEndianNoMeta() throws {
        let body = S.explicitBE(0x0008, 0x0060, "CS", S.text("CT")) + S.explicitBE(0x0028, 0x0010, "US", S.be16(0x0102))
        let file = try DICOMFile.read(body)
        #expect(file.transferSyntax == .explicitVRBigEndian)
        #expect(file.dataSet.int(.rows) == 0x0102)
    }

    @Test("explicit VR big endian Part 10 file with 16-bit pixels")
    func bigEndianPixels() throws {
        let px: [UInt8] = [0x01, 0x02, 0xFF, 0xFE]  // 0x0102, 0xFFFE
        let body = S.explicitBE(0x0028, 0x0002, "US", S.be16(1)) + S.explicitBE(0x0028, 0x0004, "CS", S.text("MONOCHROME2"))
            + S.explicitBE(0x0028, 0x0010, "US", S.be16(1)) + S.explicitBE(0x0028, 0x0011, "US", S.be16(2))
            + S.explicitBE(0x0028, 0x0100, "US", S.be16(16)) + S.explicitBE(0x0028, 0x0101, "US", S.be16(16))
            + S.explicitBE(0x0028, 0x0103, "US", S.be16(1))
            + S.be16(0x7FE0) + S.be16(0x0010) + Array("OW".utf8) + [0, 0, 0, 0, 0, 4] + px
        let file = try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.2", body: body))
        let img = try file.decodePixels()
        #expect(img.storage == .int16([0x0102, -2]))
        #expect(img.littleEndianBytes() == [0x02, 0x01, 0xFE, 0xFF])
        #expect(InspectReport.numpyDtype(img, file: file) == ">i2")
    }

    @Test("deflated explicit VR little endian is inflated (raw deflate)")
    func deflated() throws {
        let body = S.explicitLE(0x0008, 0x0060, "CS", S.text("OT")) + S.explicitLE(0x0010, 0x0020, "LO", S.text("ID9"))
        let file = try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.1.99", body: try rawDeflate(body)))
        #expect(file.transferSyntax.isDeflated)
        #expect(file.dataSet.string(.patientID) == "ID9")
        #expect(file.dataSet.count == 2)
    }

    @Test("deflate output is bounded by maxInflatedBytes")
    func deflateBomb() throws {
        let body = S.explicitLE(0x0009, 0x0010, "LO", S.text("X")) + [UInt8](repeating: 0, count: 1 << 20)
        let compressed = try rawDeflate(body)
        #expect(compressed.count < 8192)
        let error = #expect(throws: DICOMError.self) {
            try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.1.99", body: compressed), options: ReadOptions(maxInflatedBytes: 64 * 1024))
        }
        #expect(error?.code == DICOMError.limitExceededCode)
    }

    @Test("undefined-length sequences, nested, with item delimiters; undefined-length UN is read as implicit LE")
    func nestedUndefinedLength() throws {
        let inner = S.implicitLE(0x0008, 0x0100, S.text("T-1234"))
        let innerSeq = S.le16(0x0040) + S.le16(0xA730) + Array("SQ".utf8) + [0, 0] + S.le32(0xFFFF_FFFF)
            + S.le16(0xFFFE) + S.le16(0xE000) + S.le32(0xFFFF_FFFF)
            + S.explicitLE(0x0008, 0x0100, "SH", S.text("T-1234"))
            + S.le16(0xFFFE) + S.le16(0xE00D) + S.le32(0)
            + S.le16(0xFFFE) + S.le16(0xE0DD) + S.le32(0)
        // A private sequence stored as UN with undefined length: items are implicit VR LE.
        let unSeq = S.le16(0x0011) + S.le16(0x1001) + Array("UN".utf8) + [0, 0] + S.le32(0xFFFF_FFFF)
            + S.le16(0xFFFE) + S.le16(0xE000) + S.le32(UInt32(inner.count)) + inner
            + S.le16(0xFFFE) + S.le16(0xE0DD) + S.le32(0)
        let body = S.explicitLE(0x0008, 0x0060, "CS", S.text("SR")) + unSeq + innerSeq
        let ds = try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.1", body: body)).dataSet
        #expect(ds.count == 3)
        #expect(ds.sequence(Tag(0x0011, 0x1001))?.first?.string(Tag(0x0008, 0x0100)) == "T-1234")
        #expect(ds.sequence(Tag(0x0040, 0xA730))?.first?.string(Tag(0x0008, 0x0100)) == "T-1234")
        #expect(ds[Tag(0x0040, 0xA730)]?.hadUndefinedLength == true)
    }

    @Test("encapsulated pixel data: basic offset table and fragments; an empty JPEG is codec.corrupt, MPEG-2 unsupported")
    func encapsulatedJPEG() throws {
        let pixel = S.le16(0x7FE0) + S.le16(0x0010) + Array("OB".utf8) + [0, 0] + S.le32(0xFFFF_FFFF)
            + S.le16(0xFFFE) + S.le16(0xE000) + S.le32(4) + S.le32(0)
            + S.le16(0xFFFE) + S.le16(0xE000) + S.le32(4) + [0xFF, 0xD8, 0xFF, 0xD9]
            + S.le16(0xFFFE) + S.le16(0xE0DD) + S.le32(0)
        let header = S.explicitLE(0x0028, 0x0002, "US", S.le16(1)) + S.explicitLE(0x0028, 0x0004, "CS", S.text("MONOCHROME2"))
            + S.explicitLE(0x0028, 0x0010, "US", S.le16(1)) + S.explicitLE(0x0028, 0x0011, "US", S.le16(1))
            + S.explicitLE(0x0028, 0x0100, "US", S.le16(8)) + S.explicitLE(0x0028, 0x0103, "US", S.le16(0))
        let file = try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.4.50", body: header + pixel))
        let enc = try #require(file.dataSet[.pixelData]?.encapsulated)
        #expect(enc.basicOffsetTable == [0])
        #expect(enc.fragments == [[0xFF, 0xD8, 0xFF, 0xD9]])
        let error = #expect(throws: DICOMError.self) { try file.decodePixels() }
        #expect(error?.code == "codec.corrupt")
        #expect(error?.message.contains("JPEG Baseline") == true)
        #expect(error?.message.contains("1.2.840.10008.1.2.4.50") == true)
        // Video syntaxes have no codec: a typed refusal naming the syntax.
        let video = try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.4.100", body: header + pixel))
        let refusal = #expect(throws: DICOMError.self) { try video.decodePixels() }
        #expect(refusal?.code == DICOMError.unsupportedTransferSyntaxCode)
        #expect(refusal?.message.contains("MPEG2") == true)
        #expect(refusal?.message.contains("1.2.840.10008.1.2.4.100") == true)
    }

    @Test("RLE Lossless: 16-bit, two frames, extended offset table")
    func rle() throws {
        // Frame values (1x3): [0x0102, 0x0304, 0x0506] and [0xFFFF, 0, 0x8000]
        func frame(_ hi: [UInt8], _ lo: [UInt8]) -> [UInt8] {
            // Segment 1: high bytes as a literal run; segment 2: low bytes as a literal run.
            let s1: [UInt8] = [UInt8(hi.count - 1)] + hi
            let s2: [UInt8] = [UInt8(lo.count - 1)] + lo
            var header = S.le32(2) + S.le32(64) + S.le32(UInt32(64 + s1.count))
            header += [UInt8](repeating: 0, count: 64 - header.count)
            var f = header + s1 + s2
            if f.count % 2 == 1 { f.append(0) }
            return f
        }
        let f1 = frame([1, 3, 5], [2, 4, 6])
        let f2: [UInt8] = {
            // high bytes FF 00 80 as literal, low bytes 00 00 00 as a replicate run (-2 → 3 bytes).
            var header = S.le32(2) + S.le32(64) + S.le32(68)
            header += [UInt8](repeating: 0, count: 64 - header.count)
            return header + [2, 0xFF, 0x00, 0x80] + [0xFE, 0x00]
        }()
        var enc = EncapsulatedPixelData(fragments: [f1, f2])
        enc.basicOffsetTable = []
        var ds = DataSet()
        try ds.set(.samplesPerPixel, int: 1)
        ds.set(.photometricInterpretation, "MONOCHROME2")
        try ds.set(.numberOfFrames, int: 2)
        try ds.set(.rows, int: 1)
        try ds.set(.columns, int: 3)
        try ds.set(.bitsAllocated, int: 16)
        try ds.set(.bitsStored, int: 16)
        try ds.set(.pixelRepresentation, int: 0)
        let eot = [UInt64(0), UInt64(8 + f1.count)].flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64(8 * $0)) } }
        ds.set(.extendedOffsetTable, vr: .OV, bytes: eot)
        let lengths = [UInt64(f1.count), UInt64(f2.count)].flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64(8 * $0)) } }
        ds.set(.extendedOffsetTableLengths, vr: .OV, bytes: lengths)
        ds.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(enc)))
        let bytes = try DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: TransferSyntax.rleLossless.uid)
        let file = try DICOMFile.read(bytes)
        #expect(file.transferSyntax == .rleLossless)
        let img = try file.decodePixels()
        #expect(img.shape == [2, 1, 3])
        #expect(img.storage == .uint16([0x0102, 0x0304, 0x0506, 0xFF00, 0x0000, 0x8000]))
    }

    @Test("header-only read stops before pixel data")
    func headerOnly() throws {
        let bytes = try DICOMWriter.write(try Synthetic.ctSlice())
        let file = try DICOMFile.read(bytes, options: .headerOnly)
        #expect(file.stoppedBeforePixelData)
        #expect(!file.dataSet.contains(.pixelData))
        #expect(file.dataSet.string(.studyInstanceUID) == "2.25.1234")
        #expect(file.dataSet.string(.bodyPartExamined) == "CHEST")
        let error = #expect(throws: DICOMError.self) { try file.decodePixels() }
        #expect(error?.code == DICOMError.noPixelDataCode)
        // A header-only read never touches the pixel bytes: corrupting them changes nothing.
        var corrupted = bytes
        corrupted.removeLast(5)
        #expect(try DICOMFile.read(corrupted, options: .headerOnly).dataSet.count == file.dataSet.count)
    }

    func rawDeflate(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DICOMError(code: "test", message: "deflateInit2")
        }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
        var src = input
        let produced = src.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o -> Int in
                stream.next_in = inp.baseAddress
                stream.avail_in = UInt32(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                _ = deflate(&stream, Z_FINISH)
                return o.count - Int(stream.avail_out)
            }
        }
        return Array(out[0..<produced])
    }
}
