import DICOMWeb
import Testing

@Suite struct MultipartTests {
    @Test func parsesPartsWithHeadersAndBinaryBodies() throws {
        let boundary = try MultipartRelated.boundary(fromContentType: "multipart/related; type=\"application/dicom\"; boundary=\"abc\"")
        #expect(boundary == "abc")
        let payload: [UInt8] = [0, 13, 10, 45, 45, 255]  // CR LF -- inside the data
        let body = Array("preamble\r\n--abc\r\nContent-Type: application/dicom\r\n\r\n".utf8) + payload
            + Array("\r\n--abc\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n--abc--\r\n".utf8)
        let parts = try MultipartRelated.parse(body, boundary: boundary)
        #expect(parts.count == 2)
        #expect(Array(parts[0].body) == payload)
        #expect(parts[0].contentType == "application/dicom")
        #expect(String(decoding: parts[1].body, as: UTF8.self) == "second")
    }

    @Test func rejectsTruncatedAndForeignBodies() {
        #expect(throws: GatewayError.self) { try MultipartRelated.parse(Array("--abc\r\n\r\nno end".utf8), boundary: "abc") }
        #expect(throws: GatewayError.self) { try MultipartRelated.parse(Array("nothing here".utf8), boundary: "abc") }
        #expect(throws: GatewayError.self) { try MultipartRelated.boundary(fromContentType: "multipart/related; type=\"application/dicom+json\"; boundary=x") }
        #expect(throws: GatewayError.self) { try MultipartRelated.boundary(fromContentType: "multipart/form-data; boundary=x") }
        #expect(throws: GatewayError.self) { try MultipartRelated.boundary(fromContentType: "multipart/related; type=\"application/dicom\"") }
    }

    /// The streaming splitter, fed in chunks of every size from 1 byte up, yields exactly the
    /// parts the whole-body parser finds, and refuses the same truncated bodies.
    @Test func theStreamingSplitterAgreesWithTheWholeBodyParserAtEveryChunkSize() throws {
        var generator = SystemRandomNumberGenerator()
        var writer = MultipartWriter(boundary: "rg-\(UInt32.random(in: 0...UInt32.max, using: &generator))")
        var expected: [[UInt8]] = []
        for n in 0..<6 {
            // Bodies holding CR LF "--" and most of the delimiter, and an empty one.
            var part = (0..<(n * 37)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            part += Array("\r\n--\(writer.boundary.dropLast())".utf8)
            if n == 3 { part = [] }
            expected.append(part)
            writer.append(part, contentType: "application/dicom")
        }
        let body = Array("a preamble\r\n".utf8) + writer.finish()
        #expect(try MultipartRelated.parse(body, boundary: writer.boundary).map { Array($0.body) } == expected)
        for size in [1, 2, 3, 5, 7, 16, 64, 333, body.count] {
            var splitter = MultipartStreamSplitter(boundary: writer.boundary)
            var parts: [[UInt8]] = []
            var types: [String?] = []
            var start = 0
            while start < body.count {
                let end = min(body.count, start + size)
                try splitter.feed(body[start..<end]) { event in
                    switch event {
                    case .partStart(let headers):
                        parts.append([])
                        types.append(headers["content-type"])
                    case .partBytes(let bytes): parts[parts.count - 1] += bytes
                    case .partEnd: break
                    }
                }
                start = end
            }
            try splitter.finish()
            #expect(parts == expected, "chunk size \(size)")
            #expect(types.allSatisfy { $0 == "application/dicom" })
        }
        // Cut anywhere before the closing delimiter: refused.
        for cut in [0, 10, body.count / 2, body.count - 5] {
            var splitter = MultipartStreamSplitter(boundary: writer.boundary)
            try splitter.feed(body[0..<cut]) { _ in }
            #expect(throws: GatewayError.self) { try splitter.finish() }
        }
        var oversized = MultipartStreamSplitter(boundary: "b", maxHeaderBytes: 64)
        #expect(throws: GatewayError.self) {
            try oversized.feed(Array("--b\r\nX-Long: \(String(repeating: "x", count: 200))".utf8)) { _ in }
        }
    }
}
