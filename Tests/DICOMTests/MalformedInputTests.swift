import Testing
@testable import DICOM

@Suite("Malformed input")
struct MalformedInputTests {
    typealias S = Synthetic
    static let knownCodes: Set<String> = [DICOMError.truncatedCode, DICOMError.malformedCode, DICOMError.limitExceededCode]

    @Test("truncated at every offset: strict read gives a typed error, lenient read keeps a prefix")
    func truncatedEverywhere() throws {
        let bytes = try DICOMWriter.write(try Synthetic.ctSlice(rows: 2, columns: 2))
        let full = try DICOMFile.read(bytes)
        var strictErrors = 0
        for cut in 0..<bytes.count {
            let prefix = Array(bytes[0..<cut])
            do {
                let file = try DICOMFile.read(prefix)
                // A cut exactly between top-level elements is a valid, shorter file.
                #expect(file.dataSet.count < full.dataSet.count || cut == bytes.count)
            } catch let e as DICOMError {
                strictErrors += 1
                #expect(Self.knownCodes.contains(e.code), "cut \(cut): \(e)")
                #expect(!e.message.contains("Doe"), "messages never carry values")
            }
            if let lenient = try? DICOMFile.read(prefix, options: ReadOptions(allowTruncated: true)) {
                #expect(lenient.dataSet.count <= full.dataSet.count)
                // Decoding short pixel data is a typed error, never a crash.
                do { _ = try lenient.decodePixels() } catch let e as DICOMError { #expect(e.code.hasPrefix("dicom.")) }
            }
        }
        #expect(strictErrors > bytes.count / 2)
    }

    @Test("a length field claiming 4 GB is refused without allocating")
    func hugeLength() throws {
        let body = S.explicitLE(0x0008, 0x0060, "CS", S.text("CT"))
            + S.le16(0x0009) + S.le16(0x1001) + Array("OB".utf8) + [0, 0] + S.le32(0xFFFF_FFF0) + [1, 2, 3, 4]
        let file = S.part10(syntax: "1.2.840.10008.1.2.1", body: body)
        let error = #expect(throws: DICOMError.self) { try DICOMFile.read(file) }
        #expect(error?.code == DICOMError.truncatedCode)
        #expect(error?.tag == Tag(0x0009, 0x1001))
        // preamble+DICM (132) + meta (40) + (0008,0060) element (10)
        #expect(error?.offset == 132 + 40 + 10)
        #expect(error?.message.contains("offset \(132 + 40 + 10)") == true)
        // Implicit VR, same lie.
        let implicitBody = S.implicitLE(0x0008, 0x0060, S.text("CT")) + S.le16(0x0010) + S.le16(0x0010) + S.le32(0xFFFF_FFFE) + [0x41, 0x42]
        #expect(throws: DICOMError.self) { try DICOMFile.read(implicitBody) }
        // A sequence item claiming more than its sequence holds.
        let item = S.le16(0xFFFE) + S.le16(0xE000) + S.le32(0x7FFF_FFFF) + [0, 0, 0, 0]
        let seq = S.le16(0x0008) + S.le16(0x1140) + Array("SQ".utf8) + [0, 0] + S.le32(UInt32(item.count)) + item
            + S.explicitLE(0x0010, 0x0020, "LO", S.text("ID"))
        let e2 = #expect(throws: DICOMError.self) { try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.1", body: seq)) }
        #expect(e2?.code == DICOMError.malformedCode)
    }

    @Test("deep nesting hits the depth limit with a typed error")
    func deepNesting() throws {
        var body: [UInt8] = []
        let depth = 200
        for _ in 0..<depth {
            body += S.le16(0x0008) + S.le16(0x1140) + S.le32(0xFFFF_FFFF)  // implicit: undefined-length SQ
            body += S.le16(0xFFFE) + S.le16(0xE000) + S.le32(0xFFFF_FFFF)
        }
        for _ in 0..<depth {
            body += S.le16(0xFFFE) + S.le16(0xE00D) + S.le32(0)
            body += S.le16(0xFFFE) + S.le16(0xE0DD) + S.le32(0)
        }
        let error = #expect(throws: DICOMError.self) { try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2", body: body)) }
        #expect(error?.code == DICOMError.limitExceededCode)
        // Within the limit the same structure reads.
        let ok = try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2", body: body), options: ReadOptions(maxDepth: 1000))
        #expect(ok.dataSet.count == 1)
    }

    @Test("invalid VR, stray delimiter and bad item tag are malformed")
    func structuralErrors() throws {
        let badVR = S.part10(syntax: "1.2.840.10008.1.2.1", body: S.explicitLE(0x0008, 0x0005, "CS", S.text("ISO_IR 100")) + S.le16(0x0008) + S.le16(0x0060) + [0x01, 0x02] + S.le16(2) + [0x41, 0x42])
        #expect((#expect(throws: DICOMError.self) { try DICOMFile.read(badVR) })?.code == DICOMError.malformedCode)
        let stray = S.part10(syntax: "1.2.840.10008.1.2.1", body: S.le16(0xFFFE) + S.le16(0xE00D) + S.le32(0))
        #expect((#expect(throws: DICOMError.self) { try DICOMFile.read(stray) })?.code == DICOMError.malformedCode)
        let seq = S.le16(0x0008) + S.le16(0x1140) + Array("SQ".utf8) + [0, 0] + S.le32(10) + S.explicitLE(0x0008, 0x0060, "CS", S.text("CT"))
        #expect((#expect(throws: DICOMError.self) { try DICOMFile.read(S.part10(syntax: "1.2.840.10008.1.2.1", body: seq)) })?.code == DICOMError.malformedCode)
        #expect((#expect(throws: DICOMError.self) { try DICOMFile.read([]) })?.code == DICOMError.malformedCode)
        #expect((#expect(throws: DICOMError.self) { try DICOMFile.read([1, 2, 3]) })?.code == DICOMError.truncatedCode)
    }

    @Test("pixel attributes that lie give typed errors, not huge allocations")
    func lyingPixelAttributes() throws {
        var ds = DataSet()
        try ds.setPixelData(.uint16([1, 2, 3, 4]), rows: 2, columns: 2)
        try ds.set(.rows, int: 65535)
        try ds.set(.columns, int: 65535)
        try ds.set(.numberOfFrames, int: 999_999)
        let file = try DICOMFile.read(try DICOMWriter.write(ds))
        let e1 = #expect(throws: DICOMError.self) { try file.decodePixels() }
        #expect(e1?.code == DICOMError.limitExceededCode)
        try ds.set(.numberOfFrames, int: 1)
        try ds.set(.rows, int: 100)
        try ds.set(.columns, int: 100)
        let e2 = #expect(throws: DICOMError.self) { try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels() }
        #expect(e2?.code == DICOMError.truncatedCode)
        try ds.set(.bitsAllocated, int: 12)
        let e3 = #expect(throws: DICOMError.self) { try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels() }
        #expect(e3?.code == DICOMError.unsupportedPixelFormatCode)
        ds.remove(.bitsAllocated)
        let e4 = #expect(throws: DICOMError.self) { try DICOMFile.read(try DICOMWriter.write(ds)).decodePixels() }
        #expect(e4?.code == DICOMError.missingElementCode)
        #expect(e4?.message.contains("BitsAllocated") == true)
    }

    @Test("RLE that cannot fill the image is refused before allocating")
    func rleTooShort() throws {
        var header = S.le32(1) + S.le32(64)
        header += [UInt8](repeating: 0, count: 64 - header.count)
        let enc = EncapsulatedPixelData(fragments: [header + [0x81, 0x00]])  // -127: 128 copies of 0
        var ds = DataSet()
        try ds.set(.samplesPerPixel, int: 1)
        ds.set(.photometricInterpretation, "MONOCHROME2")
        try ds.set(.rows, int: 4000)
        try ds.set(.columns, int: 4000)
        try ds.set(.bitsAllocated, int: 8)
        try ds.set(.pixelRepresentation, int: 0)
        ds.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(enc)))
        let file = try DICOMFile.read(try DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: TransferSyntax.rleLossless.uid))
        let e = #expect(throws: DICOMError.self) { try file.decodePixels() }
        #expect(e?.code == DICOMError.malformedCode)
        try ds.set(.rows, int: 16)
        try ds.set(.columns, int: 16)
        let small = try DICOMFile.read(try DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: TransferSyntax.rleLossless.uid))
        let e2 = #expect(throws: DICOMError.self) { try small.decodePixels() }  // 128 of 256 bytes
        #expect(e2?.code == DICOMError.malformedCode)
    }
}
