import Foundation

/// The STOW-RS response body (PS3.18 10.5.3): a DICOM JSON data set with the Referenced
/// SOP Sequence (stored) and the Failed SOP Sequence (with Failure Reason and, as a
/// courtesy, Error Comment naming the problem — never patient data).
public struct StowResponse: Sendable {
    public struct Stored: Sendable {
        public var sopClassUID: String
        public var sopInstanceUID: String
        public var retrieveURL: String?
        public init(sopClassUID: String, sopInstanceUID: String, retrieveURL: String?) {
            self.sopClassUID = sopClassUID
            self.sopInstanceUID = sopInstanceUID
            self.retrieveURL = retrieveURL
        }
    }
    public struct Failed: Sendable {
        public var sopClassUID: String?
        public var sopInstanceUID: String?
        public var reason: UInt16
        public var comment: String
        public init(sopClassUID: String?, sopInstanceUID: String?, reason: UInt16, comment: String) {
            self.sopClassUID = sopClassUID
            self.sopInstanceUID = sopInstanceUID
            self.reason = reason
            self.comment = comment
        }
    }

    public var retrieveURL: String?
    public var stored: [Stored] = []
    public var failed: [Failed] = []

    public init(retrieveURL: String?) { self.retrieveURL = retrieveURL }

    /// 200 when every instance was stored, 202 when some failed, 409 when none was stored;
    /// 403 when none was stored and every failure was an authorisation refusal.
    public var status: Int {
        if failed.isEmpty { return 200 }
        if !stored.isEmpty { return 202 }
        if failed.allSatisfy({ $0.reason == Self.notAuthorized }) { return 403 }
        return 409
    }

    /// PS3.4 Failure Reason 0124: refused, not authorized.
    public static let notAuthorized: UInt16 = 0x0124

    public func json() -> [UInt8] {
        var object: [String: Any] = [:]
        if let retrieveURL { object["00081190"] = ["vr": "UR", "Value": [retrieveURL]] }
        if !stored.isEmpty {
            object["00081199"] = ["vr": "SQ", "Value": stored.map { item -> [String: Any] in
                var entry: [String: Any] = ["00081150": ["vr": "UI", "Value": [item.sopClassUID]],
                                            "00081155": ["vr": "UI", "Value": [item.sopInstanceUID]]]
                if let url = item.retrieveURL { entry["00081190"] = ["vr": "UR", "Value": [url]] }
                return entry
            }]
        }
        if !failed.isEmpty {
            object["00081198"] = ["vr": "SQ", "Value": failed.map { item -> [String: Any] in
                var entry: [String: Any] = ["00081197": ["vr": "US", "Value": [Int(item.reason)]], "00000902": ["vr": "LO", "Value": [item.comment]]]
                entry["00081150"] = item.sopClassUID.map { ["vr": "UI", "Value": [$0]] } ?? ["vr": "UI"]
                entry["00081155"] = item.sopInstanceUID.map { ["vr": "UI", "Value": [$0]] } ?? ["vr": "UI"]
                return entry
            }]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }
}
