import Foundation

/// The STOW-RS response body (PS3.18 10.5.3): a DICOM JSON data set with the Referenced
/// SOP Sequence (stored) and the Failed SOP Sequence (with Failure Reason and, as a
/// courtesy, Error Comment naming the problem — never patient data).
struct StowResponse {
    struct Stored { var sopClassUID: String; var sopInstanceUID: String; var retrieveURL: String }
    struct Failed { var sopClassUID: String?; var sopInstanceUID: String?; var reason: UInt16; var comment: String }

    var retrieveURL: String?
    var stored: [Stored] = []
    var failed: [Failed] = []

    /// 200 when every instance was stored, 202 when some failed, 409 when none was stored;
    /// 403 when none was stored and every failure was an authorisation refusal.
    var status: Int {
        if failed.isEmpty { return 200 }
        if !stored.isEmpty { return 202 }
        if failed.allSatisfy({ $0.reason == InstanceIntake.FailureReason.notAuthorized.rawValue }) { return 403 }
        return 409
    }

    func json() -> [UInt8] {
        var object: [String: Any] = [:]
        if let retrieveURL { object["00081190"] = ["vr": "UR", "Value": [retrieveURL]] }
        if !stored.isEmpty {
            object["00081199"] = ["vr": "SQ", "Value": stored.map { item in
                ["00081150": ["vr": "UI", "Value": [item.sopClassUID]],
                 "00081155": ["vr": "UI", "Value": [item.sopInstanceUID]],
                 "00081190": ["vr": "UR", "Value": [item.retrieveURL]]]
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
