import ArgumentParser
import RadGridCore

/// Turns a `CodedError` into a clean exit: `error [code]: message` on stderr, exit code 1.
/// Messages never hold patient data, so printing them is safe.
struct CommandFailure: Error, CustomStringConvertible {
    let code: String
    let message: String

    init(_ error: any CodedError) {
        code = error.code
        message = error.message
    }

    var description: String { "[\(code)] \(message)" }
}
