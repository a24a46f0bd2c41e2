import RadGridCore

/// Failures of the preprocessing kernels. Messages name sizes, indices and parameters only,
/// never pixel values or header text (which may be patient data).
public struct ImagingError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// A buffer does not match the dimensions it is said to have.
    public static func sizeMismatch(_ what: String, expected: Int, got: Int) -> ImagingError {
        ImagingError(code: "imaging.sizeMismatch", message: "\(what): expected \(expected) elements, got \(got)")
    }
    /// A parameter outside its valid range (window width < 1, zero target size, ...).
    public static func invalidParameter(_ message: String) -> ImagingError {
        ImagingError(code: "imaging.invalidParameter", message: message)
    }
    /// Slices of one series disagree (different matrix sizes, ...).
    public static func inconsistentSeries(_ message: String) -> ImagingError {
        ImagingError(code: "imaging.inconsistentSeries", message: message)
    }
    /// Nothing to work on.
    public static let emptySeries = ImagingError(code: "imaging.emptySeries", message: "series has no slices")
    /// Pixel layout the preprocessor does not handle (colour, multi-sample).
    public static func unsupported(_ message: String) -> ImagingError {
        ImagingError(code: "imaging.unsupported", message: message)
    }
    /// PNG encoding failed inside zlib.
    public static func png(_ message: String) -> ImagingError {
        ImagingError(code: "imaging.png", message: message)
    }
}
