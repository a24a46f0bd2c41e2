import Crypto
import Foundation
import RadGridCore

/// Errors of the supervision feed: a stable code, a message without secrets or patient data.
public struct FeedError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code.rawValue
        self.message = message
    }

    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A setting is wrong (URL, name, secret file, CA file).
        public static let configuration = Code(rawValue: "feed.configuration")
        /// The endpoint answered a 4xx other than 429: retrying cannot help; the feed stops.
        public static let refused = Code(rawValue: "feed.refused")
        /// A batch was not accepted within the attempts allowed (one-shot push).
        public static let unreachable = Code(rawValue: "feed.unreachable")
        /// Redis answered something the feed cannot read (cursor, clock).
        public static let unexpectedReply = Code(rawValue: "feed.unexpectedReply")
    }

    public func `is`(_ code: Code) -> Bool { self.code == code.rawValue }
}

/// How a batch is signed, so the platform can check it came from the grid:
///
/// - `X-RadGrid-Signature`: `sha256=` and the lowercase hex HMAC-SHA256 of the raw body bytes,
///   keyed with the shared secret's bytes.
/// - `X-RadGrid-Batch`: the batch id, the same on every resend of the same entries, so the
///   receiver drops a batch it already accepted.
public enum FeedSignature {
    public static let signatureHeader = "X-RadGrid-Signature"
    public static let batchHeader = "X-RadGrid-Batch"

    public static func sign(body: [UInt8], secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
        return "sha256=" + mac.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// Checks a signature in constant time (what a receiver does).
    public static func verify(body: [UInt8], secret: [UInt8], signature: String) -> Bool {
        let expected = Array(sign(body: body, secret: secret).utf8), given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Where and how the feed pushes.
public struct SupervisionFeedSettings: Sendable {
    /// The platform's URL every batch is POSTed to (https in production).
    public var endpoint: String
    /// Names this feed's position in Redis (`feed:{feed}:cursor:<name>`): one per endpoint.
    public var name: String
    /// The shared secret's bytes (swift-crypto's key type is not `Sendable`: rebuilt per request).
    public var secret: [UInt8]
    /// Audit entries per batch.
    public var batchSize = 500
    /// PEM file of the CA certificates the endpoint's certificate must chain to; nil for the
    /// system's trust store.
    public var caFile: String?
    /// Entries younger than this (by Redis's clock) wait for the next push: an entry being
    /// written in another chain in the same millisecond must not be skipped by the cursor.
    public var settle: Duration = .seconds(2)
    /// A day's statistics are pushed this long after it ends (an entry's hashed time may lie
    /// behind its stream id by the writer's clock; `ServiceStatistics.clockMarginMilliseconds`).
    public var statisticsDelay: Duration = .seconds(60)
    /// Pause after a failed attempt: doubling from the first to the last.
    public var backoff: (first: Duration, last: Duration) = (.milliseconds(500), .seconds(60))
    /// How long one POST may take.
    public var requestTimeout: Duration = .seconds(30)
    /// The auditor's directory of signed checkpoints (`DIR/audit/checkpoints` under `radgrid
    /// up`): each new checkpoint line is pushed as it was signed, so the platform holds an
    /// anchor of the chains that no one with access to the grid alone can rewrite. nil: none.
    public var checkpoints: String?

    public init(endpoint: String, name: String? = nil, secret: [UInt8]) throws(FeedError) {
        guard endpoint.utf8.count <= 2048, let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = url.host, !host.isEmpty else {
            throw FeedError(.configuration, "the endpoint must be an absolute https (or http) URL")
        }
        let chosen = name ?? Self.defaultName(host: host)
        guard Self.isValidName(chosen) else { throw FeedError(.configuration, "the feed name must be 1-64 letters, digits, '.', '-' or '_'") }
        guard secret.count >= 16, secret.count <= 4096 else { throw FeedError(.configuration, "the shared secret must be 16 to 4096 bytes") }
        self.endpoint = endpoint
        self.name = chosen
        self.secret = secret
    }

    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x2D || byte == 0x5F
        }
    }

    /// The endpoint's host, made a valid name.
    static func defaultName(host: String) -> String {
        let cleaned = String(host.lowercased().map { isValidName(String($0)) ? $0 : "_" }.prefix(64))
        return cleaned.isEmpty ? "default" : cleaned
    }

    /// The secret in a file: its content without surrounding whitespace, as UTF-8 bytes.
    public static func loadSecret(path: String) throws(FeedError) -> [UInt8] {
        guard let text = Files.read(path) else { throw FeedError(.configuration, "cannot read the secret file \(path)") }
        return Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    }
}
