/// Splits a `multipart/related` body as it arrives, chunk by chunk, without holding it whole:
/// the receiver sees each part's headers, then its bytes in pieces, then its end, and decides
/// itself what to keep (and how much). Only a tail shorter than the delimiter is buffered
/// between chunks. `finish()` throws when the closing delimiter never came (a truncated upload).
public struct MultipartStreamSplitter: Sendable {
    public enum Event {
        case partStart(headers: [String: String])
        case partBytes(ArraySlice<UInt8>)
        case partEnd
    }

    private enum State { case preamble, afterDelimiter, headers, body, done }

    /// CRLF "--" boundary: a part's body ends at its CRLF.
    private let delimiter: [UInt8]
    private let maxParts: Int
    private let maxHeaderBytes: Int
    private var buffer: [UInt8]
    private var state = State.preamble
    public private(set) var parts = 0

    public init(boundary: String, maxParts: Int = 10_000, maxHeaderBytes: Int = 16 << 10) {
        delimiter = Array("\r\n--\(boundary)".utf8)
        self.maxParts = maxParts
        self.maxHeaderBytes = maxHeaderBytes
        // The first delimiter has no CRLF before it; this one stands in.
        buffer = [0x0D, 0x0A]
    }

    public var isComplete: Bool { state == .done }

    public mutating func feed(_ chunk: some Collection<UInt8>, _ sink: (Event) throws -> Void) throws {
        if state == .done { return }
        buffer.append(contentsOf: chunk)
        var position = 0
        defer { buffer.removeFirst(position) }
        while true {
            switch state {
            case .preamble:
                guard let found = MultipartRelated.find(delimiter, in: buffer, from: position) else {
                    position = max(position, buffer.count - (delimiter.count - 1))
                    return
                }
                position = found + delimiter.count
                state = .afterDelimiter
            case .afterDelimiter:
                guard buffer.count - position >= 2 else { return }
                if buffer[position] == 0x2D, buffer[position + 1] == 0x2D {
                    position = buffer.count
                    state = .done
                    return
                }
                guard let lineEnd = MultipartRelated.find([0x0D, 0x0A], in: buffer, from: position) else {
                    guard buffer.count - position < 256 else { throw GatewayError.malformedMultipart("delimiter is not followed by CRLF") }
                    return
                }
                guard buffer[position..<lineEnd].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else {
                    throw GatewayError.malformedMultipart("delimiter is not followed by CRLF")
                }
                position = lineEnd + 2
                state = .headers
            case .headers:
                guard buffer.count - position >= 2 else { return }
                let headers: [String: String]
                if buffer[position] == 0x0D, buffer[position + 1] == 0x0A {
                    headers = [:]
                    position += 2
                } else {
                    guard let end = MultipartRelated.find([0x0D, 0x0A, 0x0D, 0x0A], in: buffer, from: position) else {
                        guard buffer.count - position <= maxHeaderBytes else { throw GatewayError.malformedMultipart("part \(parts + 1) has headers over \(maxHeaderBytes) bytes") }
                        return
                    }
                    headers = try MultipartRelated.parseHeaders(buffer[position..<end])
                    position = end + 4
                }
                parts += 1
                guard parts <= maxParts else { throw GatewayError.tooLarge("more than \(maxParts) parts in one request") }
                try sink(.partStart(headers: headers))
                state = .body
            case .body:
                if let found = MultipartRelated.find(delimiter, in: buffer, from: position) {
                    if found > position { try sink(.partBytes(buffer[position..<found])) }
                    try sink(.partEnd)
                    position = found + delimiter.count
                    state = .afterDelimiter
                } else {
                    // Everything but a tail that could be the start of the delimiter.
                    let safe = buffer.count - (delimiter.count - 1)
                    if safe > position {
                        try sink(.partBytes(buffer[position..<safe]))
                        position = safe
                    }
                    return
                }
            case .done:
                position = buffer.count
                return
            }
        }
    }

    /// Throws `gateway.malformedMultipart` unless the closing delimiter was read.
    public func finish() throws {
        guard state == .done else {
            throw GatewayError.malformedMultipart(state == .body ? "part \(parts) has no closing delimiter (truncated upload?)" : "the body ends before its closing delimiter (truncated upload?)")
        }
    }
}
