import Crypto
import Foundation
import RadGridCore

/// Where one party is told about critical results, and the secret its deliveries are signed
/// with. `description` never shows the secret.
public struct WebhookEndpoint: Sendable, Hashable, Codable, CustomStringConvertible {
    public var url: String
    public var secret: String

    public init(url: String, secret: String) throws(CriticalResultError) {
        try Self.validate(url: url, field: "url")
        guard secret.utf8.count >= 16, secret.utf8.count <= 512 else {
            throw CriticalResultError(.invalidWebhook, "the secret must be 16 to 512 bytes")
        }
        self.url = url
        self.secret = secret
    }

    public var description: String { "\(url) (secret set)" }

    static func validate(url: String, field: String) throws(CriticalResultError) {
        guard url.utf8.count <= 2048, let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = parsed.host, !host.isEmpty else {
            throw CriticalResultError(.invalidWebhook, "\(field) must be an absolute http or https URL")
        }
    }
}

/// A site's webhooks: its own (level 0) and its second contact (level 1, optional). Both are
/// signed with the site's secret.
public struct SiteWebhook: Sendable, Hashable, Codable, CustomStringConvertible {
    public var endpoint: WebhookEndpoint
    public var escalationURL: String?

    public init(url: String, escalationURL: String?, secret: String) throws(CriticalResultError) {
        endpoint = try WebhookEndpoint(url: url, secret: secret)
        if let escalationURL { try WebhookEndpoint.validate(url: escalationURL, field: "escalation url") }
        self.escalationURL = escalationURL
    }

    public var description: String { "\(endpoint.url)" + (escalationURL.map { ", second contact \($0)" } ?? "") + " (secret set)" }

    /// The endpoint of a level (0 or 1), if configured.
    public func endpoint(level: Int) -> WebhookEndpoint? {
        if level == 0 { return endpoint }
        guard level == 1, let escalationURL else { return nil }
        var second = endpoint
        second.url = escalationURL
        return second
    }
}

/// How a delivery is signed, so a receiver can check it came from the grid and was not replayed:
///
/// - `X-RadGrid-Timestamp`: Unix time in seconds, as decimal digits.
/// - `X-RadGrid-Signature`: `sha256=` and the lowercase hex HMAC-SHA256, keyed with the shared
///   secret (its UTF-8 bytes), over the timestamp's digits, one `.`, and the raw body bytes.
/// - `X-RadGrid-Delivery`: the delivery id, the same on every retry of one delivery.
public enum WebhookSignature {
    public static let signatureHeader = "X-RadGrid-Signature"
    public static let timestampHeader = "X-RadGrid-Timestamp"
    public static let deliveryHeader = "X-RadGrid-Delivery"
    public static let eventHeader = "X-RadGrid-Event"

    /// `sha256=<hex>` for `body` sent at `timestamp` (seconds).
    public static func sign(body: [UInt8], timestamp: Int64, secret: String) -> String {
        var message = Array(String(timestamp).utf8)
        message.append(UInt8(ascii: "."))
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + mac.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// Checks a signature in constant time (what a receiver does).
    public static func verify(body: [UInt8], timestamp: Int64, secret: String, signature: String) -> Bool {
        let expected = Array(sign(body: body, timestamp: timestamp, secret: secret).utf8)
        let given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ given[index] }
        return difference == 0
    }
}

/// The JSON body of a delivery: no patient names or ids, only what the site needs to find the
/// study in its own systems and acknowledge it.
public enum WebhookBody {
    public static func make(result: CriticalResult, level: Int, attempt: Int) -> [UInt8] {
        var object: [String: Any] = [
            "event": CriticalTarget(level: level)?.event ?? "critical.escalated",
            "delivery": result.deliveryID(level: level),
            "result": result.id,
            "study": result.study.rawValue,
            "site": result.site.rawValue,
            "source": result.source.rawValue,
            "priority": result.priority.rawValue,
            "raisedAt": iso8601(milliseconds: result.raisedMs),
            "raisedMs": result.raisedMs,
            "escalationLevel": level,
            "attempt": attempt,
            "ackPath": "/studies/\(result.study.rawValue)/critical/ack",
        ]
        if let target = CriticalTarget(level: level) { object["target"] = target.rawValue }
        if let caseID = result.caseID { object["case"] = caseID.rawValue }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    /// `2025-06-01T12:30:05.123Z`.
    public static func iso8601(milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1000), 3))Z"
    }
}
