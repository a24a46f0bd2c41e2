import Foundation
import Inference

/// Reads ONNX `TensorProto` files (the inputs and expected outputs of the ONNX backend node
/// tests) with a minimal protobuf wire reader: the fields a test tensor uses.
struct TensorProto {
    var name = ""
    var tensor: Tensor

    enum ReadError: Error { case truncated, unsupported(String) }

    static func read(_ path: String) throws -> TensorProto {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var reader = WireReader(bytes: bytes)
        var dims: [Int] = []
        var dataType = 0
        var name = ""
        var raw: [UInt8]?
        var floats: [Float] = [], int64s: [Int64] = [], int32s: [Int32] = [], doubles: [Double] = []
        while !reader.atEnd {
            let key = try reader.varint()
            let field = Int(key >> 3), wire = Int(key & 7)
            switch (field, wire) {
            case (1, 0): dims.append(Int(Int64(bitPattern: try reader.varint())))
            case (1, 2): var sub = WireReader(bytes: try reader.lengthDelimited()); while !sub.atEnd { dims.append(Int(Int64(bitPattern: try sub.varint()))) }
            case (2, 0): dataType = Int(try reader.varint())
            case (4, 2): let b = try reader.lengthDelimited(); floats += b.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            case (4, 5): floats.append(Float(bitPattern: try reader.fixed32()))
            case (5, 2): var sub = WireReader(bytes: try reader.lengthDelimited()); while !sub.atEnd { int32s.append(Int32(truncatingIfNeeded: try sub.varint())) }
            case (7, 2): var sub = WireReader(bytes: try reader.lengthDelimited()); while !sub.atEnd { int64s.append(Int64(bitPattern: try sub.varint())) }
            case (8, 2): name = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case (9, 2): raw = try reader.lengthDelimited()
            case (10, 2): let b = try reader.lengthDelimited(); doubles += b.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            default: try reader.skip(wire: wire)
            }
        }
        let type: ElementType
        switch dataType {
        case 1: type = .float32
        case 2: type = .uint8
        case 6: type = .int32
        case 7: type = .int64
        case 9: type = .bool
        case 10: type = .float16
        case 11: type = .float64
        default: throw ReadError.unsupported("ONNX data type \(dataType)")
        }
        let data: [UInt8]
        if let raw { data = raw }
        else if !floats.isEmpty { data = floats.withUnsafeBytes { Array($0) } }
        else if !doubles.isEmpty { data = doubles.withUnsafeBytes { Array($0) } }
        else if !int64s.isEmpty { data = int64s.withUnsafeBytes { Array($0) } }
        else if type == .int32 { data = int32s.withUnsafeBytes { Array($0) } }
        else if type == .uint8 || type == .bool { data = int32s.map { UInt8(truncatingIfNeeded: $0) } }
        else { data = [] }
        return TensorProto(name: name, tensor: try Tensor(shape: dims, elementType: type, bytes: data))
    }
}

struct WireReader {
    let bytes: [UInt8]
    var offset = 0
    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw TensorProto.ReadError.truncated }
            let b = bytes[offset]; offset += 1
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws -> UInt32 {
        guard offset + 4 <= bytes.count else { throw TensorProto.ReadError.truncated }
        defer { offset += 4 }
        return bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func lengthDelimited() throws -> [UInt8] {
        let n = Int(try varint())
        guard offset + n <= bytes.count else { throw TensorProto.ReadError.truncated }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    mutating func skip(wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: offset += 8
        case 2: _ = try lengthDelimited()
        case 5: offset += 4
        default: throw TensorProto.ReadError.unsupported("wire type \(wire)")
        }
    }
}
