/// Builds a `multipart/related` body (RFC 2387), as a STOW-RS client sends it.
public struct MultipartWriter: Sendable {
    public let boundary: String
    private var body: [UInt8] = []

    public init(boundary: String) { self.boundary = boundary }

    public mutating func append(_ content: [UInt8], contentType: String) {
        body += Array("--\(boundary)\r\nContent-Type: \(contentType)\r\n\r\n".utf8)
        body += content
        body += [0x0D, 0x0A]
    }

    /// The body with its closing delimiter.
    public func finish() -> [UInt8] { body + Array("--\(boundary)--\r\n".utf8) }

    /// The request's `Content-Type` header.
    public var contentType: String { "multipart/related; type=\"application/dicom\"; boundary=\(boundary)" }
}
