import Foundation

/// Model input tensors as NumPy `.npy` files (format 1.0, little-endian, C order), so the
/// trainer and the reference runtime (onnxruntime, in Python) read exactly what a model here
/// is given: `radgrid-bench screen-data` and `screen`, and the comparison tests.
public struct NumPyArray: Sendable, Equatable {
    public enum Precision: String, Sendable { case float32 = "<f4", float16 = "<f2" }

    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    /// Magic, version, header length (LE u16), a Python dict literal padded with spaces so the
    /// data starts on a 64-byte boundary, then the values.
    public func write(to path: String, precision: Precision = .float32) throws {
        guard values.count == shape.reduce(1, *) else {
            throw ScreeningError.invalidInput("shape \(shape) does not match \(values.count) values")
        }
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var header = "{'descr': '\(precision.rawValue)', 'fortran_order': False, 'shape': (\(dims)), }"
        let total = ((10 + header.utf8.count + 1 + 63) / 64) * 64
        header += String(repeating: " ", count: total - 10 - header.utf8.count - 1) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        switch precision {
        case .float32: values.withUnsafeBytes { data.append(contentsOf: $0) }
        case .float16: values.map { Float16($0).bitPattern.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Reads a C-order float32 array (versions 1 to 3); anything else is refused with its reason.
    public static func read(_ path: String) throws -> NumPyArray {
        let name = (path as NSString).lastPathComponent
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw ScreeningError.invalidInput("\(name) is not an .npy file")
        }
        // Version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one.
        let (start, length) = bytes[6] == 1 ? (10, Int(bytes[8]) | Int(bytes[9]) << 8)
            : (12, Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24)
        guard bytes.count >= start + length else { throw ScreeningError.invalidInput("\(name): truncated header") }
        let header = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False"),
              let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw ScreeningError.invalidInput("\(name): not a C-order float32 array")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let body = bytes[(start + length)...]
        guard body.count == count * 4 else { throw ScreeningError.invalidInput("\(name): \(body.count) data bytes for shape \(shape)") }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { out in body.withUnsafeBytes { out.copyMemory(from: $0) } }
        return NumPyArray(shape: shape, values: values)
    }
}
