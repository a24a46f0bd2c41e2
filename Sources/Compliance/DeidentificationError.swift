import RadGridCore

/// Every failure of de-identification. Messages name the problem (a tag, a reader error code, a
/// path the caller gave) and never a value from the data set.
public struct DeidentificationError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// The input is not a DICOM file we can read completely.
    public static let unreadableCode = "deid.unreadable"
    /// The de-identified data set cannot be encoded or stored.
    public static let unwritableCode = "deid.unwritable"
    /// The site secret is missing, too short or not hex.
    public static let secretCode = "deid.secret"
    /// An unknown `--profile` option.
    public static let profileCode = "deid.profile"

    static func unreadable(_ what: String) -> DeidentificationError { DeidentificationError(code: unreadableCode, message: what) }
    static func unwritable(_ what: String) -> DeidentificationError { DeidentificationError(code: unwritableCode, message: what) }
}
