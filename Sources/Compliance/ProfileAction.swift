import DICOM

/// An action code of PS3.15 Table E.1-1.
public enum ProfileAction: String, Sendable, CaseIterable {
    /// Replace with a non-empty dummy value of the VR.
    case D
    /// Replace with an empty value.
    case Z
    /// Remove.
    case X
    /// Keep (sequences still de-identified item by item).
    case K
    /// Clean: replace with values of similar meaning that identify nobody.
    case C
    /// Replace with a new UID, consistent within the set of instances.
    case U
    case ZD = "Z/D"
    case XZ = "X/Z"
    case XD = "X/D"
    case XZD = "X/Z/D"
    /// X unless Z or the replacement of the contained instance UIDs keeps the IOD conformant.
    case XZUStar = "X/Z/U*"
}

/// One row of Table E.1-1: the attribute, its Basic Profile action, and the action under the
/// two options this module implements, where the table gives one.
public struct ProfileAttribute: Sendable, Equatable {
    public let tag: Tag
    public let name: String
    public let basic: ProfileAction
    /// Action under "Retain Longitudinal Temporal Information with Full Dates".
    public let retainFullDates: ProfileAction?
    /// Action under "Retain Patient Characteristics".
    public let retainPatientCharacteristics: ProfileAction?

    public init(tag: Tag, name: String, basic: ProfileAction, retainFullDates: ProfileAction? = nil, retainPatientCharacteristics: ProfileAction? = nil) {
        self.tag = tag
        self.name = name
        self.basic = basic
        self.retainFullDates = retainFullDates
        self.retainPatientCharacteristics = retainPatientCharacteristics
    }
}

/// The rows of Table E.1-1 that name a range of tags rather than one tag.
public enum ProfileTagRange: String, Sendable, CaseIterable {
    /// (gggg,eeee) with gggg odd: X.
    case privateAttributes
    /// (50xx,xxxx): X.
    case curveData
    /// (60xx,3000): X.
    case overlayData
    /// (60xx,4000): X.
    case overlayComments

    public var basic: ProfileAction { .X }

    public func contains(_ tag: Tag) -> Bool {
        switch self {
        case .privateAttributes: return tag.isPrivate
        case .curveData: return tag.group & 0xFF00 == 0x5000 && !tag.isPrivate
        case .overlayData: return tag.group & 0xFF00 == 0x6000 && !tag.isPrivate && tag.element == 0x3000
        case .overlayComments: return tag.group & 0xFF00 == 0x6000 && !tag.isPrivate && tag.element == 0x4000
        }
    }
}
