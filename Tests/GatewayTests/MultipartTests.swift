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
}
