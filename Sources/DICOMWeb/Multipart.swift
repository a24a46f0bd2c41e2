#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RadGridCore

/// One body part of a `multipart/related` request.
public struct MultipartPart: Sendable {
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: ArraySlice<UInt8>

    public var contentType: String? { headers["content-type"] }
}

/// Errors of request parsing; each maps to a 4xx.
public struct GatewayError: CodedError, Equatable {
    public let code: String
    public let message: String
    /// The HTTP status the gateway answers with.
    public let status: Int
    /// For 429 and 503: when to try again (the server's default when nil).
    public let retryAfterSeconds: Int?

    public init(code: String, message: String, status: Int, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
    }

    public static func malformedMultipart(_ message: String) -> GatewayError { .init(code: "gateway.malformedMultipart", message: message, status: 400) }
    public static func unsupportedMediaType(_ message: String) -> GatewayError { .init(code: "gateway.unsupportedMediaType", message: message, status: 415) }
    public static func unauthorized(_ message: String) -> GatewayError { .init(code: "gateway.unauthorized", message: message, status: 401) }
    public static func forbidden(_ message: String) -> GatewayError { .init(code: "gateway.forbidden", message: message, status: 403) }
    public static func tooLarge(_ message: String) -> GatewayError { .init(code: "gateway.tooLarge", message: message, status: 413) }
    public static func busy(_ message: String) -> GatewayError { .init(code: "gateway.busy", message: message, status: 429) }
    public static func rateLimited(_ message: String, retryAfter: Int) -> GatewayError { .init(code: "gateway.rateLimited", message: message, status: 429, retryAfterSeconds: retryAfter) }
    public static func priorityNotAllowed(_ message: String) -> GatewayError { .init(code: "gateway.priorityNotAllowed", message: message, status: 403) }
    public static func consentRequired(_ message: String) -> GatewayError { .init(code: "gateway.consentRequired", message: message, status: 403) }
    public static func badRequest(_ message: String) -> GatewayError { .init(code: "gateway.badRequest", message: message, status: 400) }
    public static func notFound(_ message: String) -> GatewayError { .init(code: "gateway.notFound", message: message, status: 404) }
}

/// A strict `multipart/related` parser (RFC 2387 / RFC 2046) for STOW-RS bodies.
///
/// The whole body is validated before any part is handed out, so a truncated upload
/// (no closing delimiter) is rejected as a whole and nothing of it is stored.
public enum MultipartRelated {
    /// Parses `Content-Type: multipart/related; type="application/dicom"; boundary=...`.
    /// Returns the boundary; throws 415 for other media types.
    public static func boundary(fromContentType contentType: String?) throws -> String {
        guard let contentType else { throw GatewayError.unsupportedMediaType("Content-Type is missing; expected multipart/related") }
        let parameters = contentType.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
        guard let mediaType = parameters.first?.lowercased(), mediaType == "multipart/related" else {
            throw GatewayError.unsupportedMediaType("expected multipart/related; type=\"application/dicom\"")
        }
        var boundary: String?
        for parameter in parameters.dropFirst() {
            guard let equals = parameter.firstIndex(of: "=") else { continue }
            let name = parameter[..<equals].lowercased().trimmingCharacters(in: " \t")
            var value = String(parameter[parameter.index(after: equals)...]).trimmingCharacters(in: " \t")
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            switch name {
            case "boundary": boundary = value
            case "type":
                guard value.lowercased() == "application/dicom" else {
                    throw GatewayError.unsupportedMediaType("only type=\"application/dicom\" parts are accepted (got \(value.prefix(64)))")
                }
            default: break
            }
        }
        guard let boundary, !boundary.isEmpty, boundary.utf8.count <= 70 else {
            throw GatewayError.malformedMultipart("multipart boundary is missing or longer than 70 characters")
        }
        return boundary
    }

    /// Splits `body` into parts. Throws `gateway.malformedMultipart` when the first
    /// delimiter or the closing delimiter is missing, or a part has no header block.
    public static func parse(_ body: [UInt8], boundary: String, maxParts: Int = 10_000) throws -> [MultipartPart] {
        let delimiter = Array("--\(boundary)".utf8)
        guard var position = find(delimiter, in: body, from: 0) else {
            throw GatewayError.malformedMultipart("no multipart delimiter found")
        }
        var parts: [MultipartPart] = []
        while true {
            position += delimiter.count
            // "--" after a delimiter closes the body.
            if position + 1 < body.count, body[position] == 0x2D, body[position + 1] == 0x2D { return parts }
            // Skip transport padding and the line break after the delimiter.
            while position < body.count, body[position] == 0x20 || body[position] == 0x09 { position += 1 }
            guard position + 1 < body.count, body[position] == 0x0D, body[position + 1] == 0x0A else {
                throw GatewayError.malformedMultipart("delimiter is not followed by CRLF (truncated upload?)")
            }
            position += 2
            guard let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: position, orAt: position, emptyHeaders: true) else {
                throw GatewayError.malformedMultipart("part \(parts.count + 1) has no end of headers")
            }
            let headers = try parseHeaders(body[position..<headerEnd.start])
            let contentStart = headerEnd.end
            guard let next = find([0x0D, 0x0A] + delimiter, in: body, from: contentStart) else {
                throw GatewayError.malformedMultipart("part \(parts.count + 1) has no closing delimiter (truncated upload?)")
            }
            parts.append(MultipartPart(headers: headers, body: body[contentStart..<next]))
            guard parts.count <= maxParts else { throw GatewayError.tooLarge("more than \(maxParts) parts in one request") }
            position = next + 2
        }
    }

    static func parseHeaders(_ bytes: ArraySlice<UInt8>) throws -> [String: String] {
        var headers: [String: String] = [:]
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else {
                throw GatewayError.malformedMultipart("malformed part header line")
            }
            headers[line[..<colon].lowercased().trimmingCharacters(in: " \t")] = String(line[line.index(after: colon)...]).trimmingCharacters(in: " \t")
        }
        return headers
    }

    /// Index of the first occurrence of `needle` in `haystack` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = Int32(needle[0])
        let last = haystack.count - needle.count
        // memchr for the first byte, memcmp for the rest: the delimiter scan runs over every
        // byte of every upload, and libc's vectorised search is several times a byte loop.
        return haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pin in
                guard let base = hay.baseAddress, let pattern = pin.baseAddress else { return nil }
                var index = start
                while index <= last {
                    guard let hit = memchr(base + index, first, last - index + 1) else { return nil }
                    let position = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + position, pattern, pin.count) == 0 { return position }
                    index = position + 1
                }
                return nil
            }
        }
    }

    /// The end of a header block: `CRLF CRLF`, or an immediate `CRLF` when a part has no headers.
    private static func find(_ terminator: [UInt8], in body: [UInt8], from start: Int, orAt position: Int, emptyHeaders: Bool) -> (start: Int, end: Int)? {
        if emptyHeaders, position + 1 < body.count, body[position] == 0x0D, body[position + 1] == 0x0A {
            return (position, position + 2)
        }
        guard let found = find(terminator, in: body, from: start) else { return nil }
        return (found, found + 4)
    }
}

extension StringProtocol {
    func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
