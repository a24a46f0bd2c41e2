import RadGridCore

/// A zstd failure. Codes: `zstd.corrupt` (bad magic, checksum or data), `zstd.truncated`
/// (the input ends inside a frame), `zstd.tooLarge` (output would pass the caller's limit),
/// `zstd.invalidArgument`, `zstd.internal`.
public struct ZstdError: CodedError, Equatable {
    public let code: String
    public let message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    static func corrupt(_ message: String) -> ZstdError { ZstdError(code: "zstd.corrupt", message: message) }
    static func truncated(_ message: String) -> ZstdError { ZstdError(code: "zstd.truncated", message: message) }
    static func tooLarge(_ message: String) -> ZstdError { ZstdError(code: "zstd.tooLarge", message: message) }
    static func invalidArgument(_ message: String) -> ZstdError { ZstdError(code: "zstd.invalidArgument", message: message) }
    static func `internal`(_ message: String) -> ZstdError { ZstdError(code: "zstd.internal", message: message) }
}
