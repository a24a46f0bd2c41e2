import Foundation

/// A STOW-RS response as a client reads it (PS3.18 10.5.3): the instances stored (Referenced
/// SOP Sequence) and those refused with their Failure Reason (Failed SOP Sequence).
public struct StowReply: Sendable, Equatable {
    public struct Stored: Sendable, Equatable {
        public var sopClassUID: String?
        public var sopInstanceUID: String
    }
    public struct Failed: Sendable, Equatable {
        public var sopClassUID: String?
        public var sopInstanceUID: String?
        public var reason: UInt16
        public var comment: String?
    }

    public var stored: [Stored] = []
    public var failed: [Failed] = []

    /// Throws `gateway.badRequest` when the body is not a DICOM JSON object.
    public init(json body: [UInt8]) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw GatewayError.badRequest("the STOW-RS response is not a DICOM JSON object")
        }
        func items(_ tag: String) -> [[String: Any]] { (object[tag] as? [String: Any])?["Value"] as? [[String: Any]] ?? [] }
        func first(_ item: [String: Any], _ tag: String) -> Any? { ((item[tag] as? [String: Any])?["Value"] as? [Any])?.first }
        for item in items("00081199") {
            guard let sop = first(item, "00081155") as? String else { continue }
            stored.append(Stored(sopClassUID: first(item, "00081150") as? String, sopInstanceUID: sop))
        }
        for item in items("00081198") {
            let reason = (first(item, "00081197") as? NSNumber)?.intValue ?? 0x0110
            failed.append(Failed(sopClassUID: first(item, "00081150") as? String, sopInstanceUID: first(item, "00081155") as? String,
                                 reason: UInt16(truncatingIfNeeded: reason), comment: first(item, "00000902") as? String))
        }
    }
}
