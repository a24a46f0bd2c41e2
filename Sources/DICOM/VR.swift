/// Value Representation (PS3.5 6.2).
public enum VR: String, Sendable, CaseIterable {
    case AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST, SV, TM, UC, UI, UL, UN, UR, US, UT, UV

    /// Explicit VR encodings with a 2-byte reserved field and a 4-byte length.
    public var hasLongLength: Bool {
        switch self {
        case .OB, .OD, .OF, .OL, .OV, .OW, .SQ, .SV, .UC, .UN, .UR, .UT, .UV: return true
        default: return false
        }
    }

    /// Character-string VRs (decoded as text, padded to even length with a space or NUL).
    public var isString: Bool {
        switch self {
        case .AE, .AS, .CS, .DA, .DS, .DT, .IS, .LO, .LT, .PN, .SH, .ST, .TM, .UC, .UI, .UR, .UT: return true
        default: return false
        }
    }

    /// Text VRs whose value is a single free-text value (no backslash splitting, leading spaces kept).
    public var isText: Bool { self == .LT || self == .ST || self == .UT || self == .UR }

    /// Size of one binary number for numeric VRs (also the byte-swap unit), 0 otherwise.
    public var binaryWidth: Int {
        switch self {
        case .US, .SS, .OW: return 2
        case .UL, .SL, .FL, .OF, .OL: return 4
        case .AT: return 2  // two 16-bit halves, swapped separately
        case .FD, .OD, .SV, .UV, .OV: return 8
        default: return 0
        }
    }

    init?(bytes b0: UInt8, _ b1: UInt8) {
        guard b0 >= 0x41, b0 <= 0x5A, b1 >= 0x41, b1 <= 0x5A else { return nil }
        let s = String(decoding: [b0, b1], as: UTF8.self)
        self.init(rawValue: s)
    }
}
