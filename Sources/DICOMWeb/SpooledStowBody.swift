import Foundation
import NIOCore
import NIOPosix
import Zstd

/// A STOW-RS body received without holding it whole: it is split as it streams in (zstd
/// decoded on the way when so encoded), each part capped at the instance limit before it is
/// kept. The first parts stay in memory up to `Limits.memoryBytes` (a usual upload never
/// touches the disk); every later complete part is written to an unlinked spool file. The
/// handler then reads the parts back a slice at a time. So an upload costs at most the memory
/// budget plus one instance plus one store slice, whatever its size, and nothing is stored from
/// a body that never ends.
public final class SpooledStowBody: @unchecked Sendable {
    public struct Part: Sendable {
        public var offset: Int
        public var length: Int
        public var contentType: String?
        /// Above the instance limit: its bytes were dropped as they came.
        public var tooLarge: Bool
        /// The part's bytes when kept in memory (nil: in the spool file at `offset`).
        var bytes: [UInt8]?
    }

    /// The spool file, already unlinked: it vanishes when closed, even after a crash.
    private let fd: Int32
    public private(set) var parts: [Part] = []
    private var end = 0
    /// Bytes of parts kept in memory so far.
    private var inMemory = 0

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    public struct Limits: Sendable {
        public var maxRequestBytes: Int
        public var maxPartBytes: Int
        /// Parts kept in memory before the spool file is used (writing and reading back a
        /// usual upload cost more CPU than the rest of its intake but parsing).
        public var memoryBytes: Int
        public init(maxRequestBytes: Int, maxPartBytes: Int, memoryBytes: Int = 16 << 20) {
            self.maxRequestBytes = maxRequestBytes
            self.maxPartBytes = maxPartBytes
            self.memoryBytes = memoryBytes
        }
    }

    /// Receives `body` (a request body's chunks) into a spool file in `directory`.
    public static func receive<Body: AsyncSequence>(_ body: Body, boundary: String, zstd: Bool, limits: Limits,
                                                    directory: String) async throws -> SpooledStowBody where Body.Element == ByteBuffer {
        let spool = try await blocking { () -> SpooledStowBody in
            let path = "\(directory)/stow-\(UUID().uuidString)"
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw GatewayError(code: "gateway.spool", message: "cannot create an upload spool file", status: 503) }
            unlink(path)
            return SpooledStowBody(fd: fd)
        }
        var splitter = MultipartStreamSplitter(boundary: boundary)
        let decoder = zstd ? try ZstdDecompressionStream(maxOutputSize: limits.maxRequestBytes) : nil
        var received = 0
        var current: [UInt8] = []
        var currentType: String?
        var currentTooLarge = false
        var finished: [(bytes: [UInt8], type: String?, tooLarge: Bool)] = []
        var decoded: [UInt8] = []
        // The parts of one upload are mostly alike in size: start each at the last one's, so it
        // is not copied again at every doubling as it grows.
        var lastPartBytes = 0
        func split(_ bytes: some Collection<UInt8>) throws {
            try splitter.feed(bytes) { event in
                switch event {
                case .partStart(let headers):
                    current = []
                    current.reserveCapacity(min(lastPartBytes, limits.maxPartBytes))
                    currentType = headers["content-type"]
                    currentTooLarge = false
                case .partBytes(let bytes):
                    guard !currentTooLarge else { return }
                    if current.count + bytes.count > limits.maxPartBytes {
                        currentTooLarge = true
                        current = []
                    } else {
                        current += bytes
                    }
                case .partEnd:
                    lastPartBytes = current.count
                    finished.append((current, currentType, currentTooLarge))
                    current = []
                }
            }
        }
        for try await chunk in body {
            received += chunk.readableBytes
            guard received <= limits.maxRequestBytes else { throw GatewayError.tooLarge("request body is above the limit of \(limits.maxRequestBytes) bytes") }
            if let decoder {
                decoded.removeAll(keepingCapacity: true)
                do {
                    try decoder.decompress(Array(chunk.readableBytesView), into: &decoded)
                } catch let error as ZstdError {
                    throw GatewayError(code: "gateway.badEncoding", message: "the zstd body cannot be decompressed within the limit: \(error.code)", status: 400)
                }
                try split(decoded)
            } else {
                try split(chunk.readableBytesView)
            }
            if !finished.isEmpty {
                let parts = finished
                finished = []
                try await spool.append(parts, memoryBytes: limits.memoryBytes)
            }
        }
        if let decoder {
            do { try decoder.finish() } catch let error as ZstdError {
                throw GatewayError(code: "gateway.badEncoding", message: "the zstd body is truncated: \(error.code)", status: 400)
            }
        }
        try splitter.finish()
        return spool
    }

    private func append(_ finished: [(bytes: [UInt8], type: String?, tooLarge: Bool)], memoryBytes: Int) async throws {
        var placed: [Part] = []
        var toDisk: [(bytes: [UInt8], type: String?, tooLarge: Bool)] = []
        var offset = end
        for part in finished {
            if inMemory + part.bytes.count <= memoryBytes {
                inMemory += part.bytes.count
                placed.append(Part(offset: -1, length: part.bytes.count, contentType: part.type, tooLarge: part.tooLarge, bytes: part.bytes))
                continue
            }
            placed.append(Part(offset: offset, length: part.bytes.count, contentType: part.type, tooLarge: part.tooLarge))
            toDisk.append(part)
            offset += part.bytes.count
        }
        let start = end
        let fd = fd
        let written = toDisk
        if !written.isEmpty { try await Self.blocking {
            var position = start
            for part in written where !part.bytes.isEmpty {
                try part.bytes.withUnsafeBytes { raw in
                    var done = 0
                    while done < raw.count {
                        let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(position + done))
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else { throw GatewayError(code: "gateway.spool", message: "cannot write the upload spool (disk full?)", status: 503) }
                        done += n
                    }
                }
                position += part.bytes.count
            }
        } }
        parts += placed
        end = offset
    }

    /// One part's bytes, kept or read back from the spool.
    public func read(_ part: Part) async throws -> [UInt8] {
        if let bytes = part.bytes { return bytes }
        let fd = fd
        return try await Self.blocking {
            var bytes = [UInt8](repeating: 0, count: part.length)
            try bytes.withUnsafeMutableBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(part.offset + done))
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw GatewayError(code: "gateway.spool", message: "cannot read the upload spool", status: 503) }
                    done += n
                }
            }
            return bytes
        }
    }

    /// File I/O blocks: it runs on NIO's blocking pool, never on the cooperative one.
    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
