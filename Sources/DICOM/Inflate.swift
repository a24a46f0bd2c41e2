import CZlib

enum Inflate {
    /// Inflates a raw DEFLATE stream (no zlib header, windowBits -15), refusing to produce
    /// more than `limit` bytes.
    static func raw(_ input: [UInt8], limit: Int, offset: Int) throws -> [UInt8] {
        var stream = z_stream()
        var rc = inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw DICOMError.malformed("cannot initialise inflate (zlib \(rc))", offset: offset) }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        let chunk = 64 * 1024
        var buffer = [UInt8](repeating: 0, count: chunk)
        return try input.withUnsafeBufferPointer { inBuf -> [UInt8] in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            repeat {
                rc = buffer.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(chunk)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk - Int(stream.avail_out)
                if output.count + produced > limit {
                    throw DICOMError.limit("deflated data set inflates past the \(limit)-byte limit", offset: offset)
                }
                output.append(contentsOf: buffer[0..<produced])
                switch rc {
                case Z_OK, Z_STREAM_END: break
                case Z_BUF_ERROR:
                    // No progress possible: input exhausted without a final block.
                    if stream.avail_in == 0 {
                        throw DICOMError.truncated("deflate stream ends early", offset: offset + Int(stream.total_in))
                    }
                default:
                    throw DICOMError.malformed("invalid deflate stream (zlib \(rc))", offset: offset + Int(stream.total_in))
                }
                if rc == Z_OK && stream.avail_in == 0 && stream.avail_out != 0 {
                    throw DICOMError.truncated("deflate stream ends early", offset: offset + Int(stream.total_in))
                }
            } while rc != Z_STREAM_END
            return output
        }
    }
}
