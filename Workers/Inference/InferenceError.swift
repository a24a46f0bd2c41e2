import RadGridCore

/// What went wrong running a model. Messages name the model file or tensor and OpenVINO's own
/// reason; never image content.
public struct InferenceError: CodedError, Equatable {
    public enum Code: String, Sendable {
        /// The runtime could not start (its libraries or plugins are missing).
        case unavailable = "inference.unavailable"
        /// The model file is missing or OpenVINO could not read it.
        case modelUnreadable = "inference.modelUnreadable"
        /// The device is not present on this machine.
        case device = "inference.device"
        /// Compilation for the device failed.
        case compile = "inference.compile"
        /// An input is missing, unknown, or of the wrong type or shape.
        case input = "inference.input"
        /// The inference itself failed.
        case run = "inference.run"
    }

    public let code: String
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code.rawValue
        self.message = message
    }
}
