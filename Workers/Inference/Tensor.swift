import COpenVINO

/// Element types a model's inputs and outputs may have (the ones ONNX classifiers use).
public enum ElementType: String, Sendable, Codable, CaseIterable {
    case float32, float64, float16, int64, int32, uint8, bool

    public var byteWidth: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16: 2
        case .uint8, .bool: 1
        }
    }

    var openVINO: ov_element_type_e {
        switch self {
        case .float32: F32
        case .float64: F64
        case .float16: F16
        case .int64: I64
        case .int32: I32
        case .uint8: U8
        case .bool: ov_element_type_e(rawValue: 1) // BOOLEAN, which the C importer does not expose
        }
    }

    init?(_ type: ov_element_type_e) {
        switch type {
        case F32: self = .float32
        case F64: self = .float64
        case F16: self = .float16
        case I64: self = .int64
        case I32: self = .int32
        case U8: self = .uint8
        case ov_element_type_e(rawValue: 1): self = .bool
        default: return nil
        }
    }
}

/// A dense tensor in row-major order: what goes into and comes out of a model.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var elementType: ElementType
    /// Little-endian element bytes, `shape.product * elementType.byteWidth` of them.
    public var bytes: [UInt8]

    public init(shape: [Int], elementType: ElementType, bytes: [UInt8]) throws(InferenceError) {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), bytes.count == count * elementType.byteWidth else {
            throw InferenceError(.input, "tensor of shape \(shape) and type \(elementType.rawValue) needs \(count * elementType.byteWidth) bytes, got \(bytes.count)")
        }
        self.shape = shape
        self.elementType = elementType
        self.bytes = bytes
    }

    public init(shape: [Int], floats: [Float]) throws(InferenceError) {
        let bytes = floats.withUnsafeBytes { Array($0) }
        try self.init(shape: shape, elementType: .float32, bytes: bytes)
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The values as `Float` (float32 and float64 outputs; others are converted).
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { raw in
            switch elementType {
            case .float32: Array(raw.bindMemory(to: Float.self))
            case .float64: raw.bindMemory(to: Double.self).map { Float($0) }
            case .float16: raw.bindMemory(to: UInt16.self).map { Float(Float16(bitPattern: $0)) }
            case .int64: raw.bindMemory(to: Int64.self).map { Float($0) }
            case .int32: raw.bindMemory(to: Int32.self).map { Float($0) }
            case .uint8, .bool: raw.map { Float($0) }
            }
        }
    }
}

/// A model input or output as compiled: its name and shape, `nil` where a dimension is dynamic.
public struct PortDescription: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var elementType: ElementType?
    public var shape: [Int?]

    public var description: String {
        "\(name) \(elementType?.rawValue ?? "?")[\(shape.map { $0.map(String.init) ?? "?" }.joined(separator: ","))]"
    }
}
