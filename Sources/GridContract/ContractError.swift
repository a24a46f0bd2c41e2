import RadGridCore

/// Errors of the grid contract: input that does not meet the contract (an identifier, a task
/// payload, a stream entry). Messages name the field, never its patient-related value.
public struct ContractError: CodedError, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        public static let invalidIdentifier = Code(rawValue: "contract.invalidIdentifier")
        public static let invalidPayload = Code(rawValue: "contract.invalidPayload")
        public static let unsupportedVersion = Code(rawValue: "contract.unsupportedVersion")
        public static let invalidEvent = Code(rawValue: "contract.invalidEvent")
    }

    public let codeValue: Code
    public let message: String
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, _ message: String) {
        self.codeValue = code
        self.message = message
    }
}
