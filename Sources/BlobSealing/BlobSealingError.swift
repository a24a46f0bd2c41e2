import RadGridCore

/// Errors of sealing and opening blobs and of the key file. Messages name key ids, paths and
/// sizes only: never key bytes, never anything taken from inside a blob.
public struct BlobSealingError: CodedError, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        /// The blob was sealed under a key id this keyring does not hold (yet).
        public static let unknownKey = Code(rawValue: "blob.unknownKey")
        /// The tag did not verify: the blob was altered, or is read as another site's, study's
        /// or instance's.
        public static let authentication = Code(rawValue: "blob.authentication")
        /// Not in the sealed format (too short, bad header).
        public static let malformed = Code(rawValue: "blob.malformed")
        /// A sealed blob was read by a process that was given no keys.
        public static let noKeys = Code(rawValue: "blob.noKeys")
        /// The key file can be read or written by group or others.
        public static let permissions = Code(rawValue: "keys.permissions")
        public static let unreadable = Code(rawValue: "keys.unreadable")
        /// Not JSON of the expected shape, or a key that is not 32 bytes of base64.
        public static let malformedFile = Code(rawValue: "keys.malformed")
        /// The file's `current` id has no key.
        public static let noCurrent = Code(rawValue: "keys.noCurrent")
        /// Creating a file (or a key id) that already exists.
        public static let exists = Code(rawValue: "keys.exists")
        public static let write = Code(rawValue: "keys.write")
        /// A key id outside 1-64 characters of `A-Z a-z 0-9 . _ -`.
        public static let invalidID = Code(rawValue: "keys.invalidID")
    }

    public let codeValue: Code
    public let message: String
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, _ message: String) {
        self.codeValue = code
        self.message = message
    }
}
