import CriticalResults
import Foundation
import GridContract
import Testing

@Suite("Critical results: the policy file and the webhook contract")
struct PolicyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theShippedFileIsTheBuiltInPolicy() throws {
        let shipped = try CriticalResultPolicy.load(path: Self.root.appendingPathComponent("Ops/critical-results.json").path)
        #expect(shipped == .standard)
        #expect(shipped.escalateAfter(.stat) == 15 * 60_000)
        #expect(shipped.initialBackoffMs == 5_000 && shipped.maxBackoffMs == 600_000)
    }

    @Test(arguments: [
        (#"{"retry": {"initialSecond": 5}}"#, "retry.initialSecond"),
        (#"{"retry": {"maxAttempts": 0}}"#, "retry.maxAttempts"),
        (#"{"retry": {"initialSeconds": 10, "maxSeconds": 5}}"#, "retry.maxSeconds"),
        (#"{"escalateAfterMinutes": {"asap": 5}}"#, "escalateAfterMinutes.asap"),
        (#"{"escalateAfterMinutes": {"stat": -1}}"#, "escalateAfterMinutes.stat"),
        (#"{"adminsAfterMinutes": "soon"}"#, "adminsAfterMinutes"),
        (#"{"retentionDay": 30}"#, "retentionDay"),
        (#"[1, 2]"#, "JSON object"),
    ])
    func aBadPolicyNamesTheField(json: String, field: String) {
        #expect {
            _ = try CriticalResultPolicy.parse(Data(json.utf8))
        } throws: { error in
            guard let error = error as? CriticalResultError else { return false }
            return error.codeValue == .invalidPolicy && error.message.contains(field)
        }
    }

    @Test func aPartialPolicyKeepsTheOtherDefaults() throws {
        let policy = try CriticalResultPolicy.parse(Data(#"{"escalateAfterMinutes": {"stat": 5}, "retry": {"maxAttempts": 3}}"#.utf8))
        #expect(policy.escalateAfter(.stat) == 5 * 60_000)
        #expect(policy.escalateAfter(.urgent) == 30 * 60_000)
        #expect(policy.maxAttempts == 3)
        #expect(policy.retentionMs == CriticalResultPolicy.standard.retentionMs)
    }

    /// The signature is checked against Python's HMAC in NotifierTests; here its form and that
    /// any change to body, time or secret breaks it.
    @Test func theSignatureCoversTimestampBodyAndSecret() {
        let body = Array(#"{"event":"critical.raised"}"#.utf8)
        let signature = WebhookSignature.sign(body: body, timestamp: 1_750_000_000, secret: "s3cret-s3cret-s3cret")
        #expect(signature.hasPrefix("sha256=") && signature.count == 7 + 64)
        #expect(WebhookSignature.verify(body: body, timestamp: 1_750_000_000, secret: "s3cret-s3cret-s3cret", signature: signature))
        #expect(!WebhookSignature.verify(body: body + [0x20], timestamp: 1_750_000_000, secret: "s3cret-s3cret-s3cret", signature: signature))
        #expect(!WebhookSignature.verify(body: body, timestamp: 1_750_000_001, secret: "s3cret-s3cret-s3cret", signature: signature))
        #expect(!WebhookSignature.verify(body: body, timestamp: 1_750_000_000, secret: "s3cret-s3cret-s3creT", signature: signature))
    }

    @Test func webhookConfigurationIsValidated() {
        #expect(throws: CriticalResultError.self) { try SiteWebhook(url: "ftp://site/hook", escalationURL: nil, secret: String(repeating: "x", count: 20)) }
        #expect(throws: CriticalResultError.self) { try SiteWebhook(url: "https://site/hook", escalationURL: "nope", secret: String(repeating: "x", count: 20)) }
        #expect(throws: CriticalResultError.self) { try SiteWebhook(url: "https://site/hook", escalationURL: nil, secret: "short") }
        #expect((try? SiteWebhook(url: "https://site/hook", escalationURL: "https://site/second", secret: String(repeating: "x", count: 20))) != nil)
    }
}
