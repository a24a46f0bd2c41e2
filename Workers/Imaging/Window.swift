/// Modality LUT given as Rescale Slope / Rescale Intercept (PS3.3 C.11.1): `out = slope * stored + intercept`.
/// For CT the output is in Hounsfield units.
public struct ModalityLUT: Sendable, Equatable, Codable {
    public var slope: Double
    public var intercept: Double

    public init(slope: Double = 1, intercept: Double = 0) {
        self.slope = slope
        self.intercept = intercept
    }

    public static let identity = ModalityLUT()

    @inline(__always)
    public func apply(_ stored: Double) -> Double { stored * slope + intercept }
}

/// A linear VOI window (PS3.3 C.11.2.1.2, VOI LUT Function LINEAR):
///
///     x <= c - 0.5 - (w-1)/2  -> ymin
///     x >  c - 0.5 + (w-1)/2  -> ymax
///     else y = ((x - (c - 0.5)) / (w-1) + 0.5) * (ymax - ymin) + ymin
///
/// The clamped linear expression equals the piecewise definition (it reaches ymin and ymax
/// exactly at the two breakpoints), so kernels evaluate it as one affine map plus a clamp.
/// Width must be >= 1.
public struct VOIWindow: Sendable, Equatable, Codable, CustomStringConvertible {
    public var center: Double
    public var width: Double

    public init(center: Double, width: Double) {
        self.center = center
        self.width = width
    }

    public var isValid: Bool { width >= 1 && center.isFinite && width.isFinite }

    /// Lowest input mapped above ymin.
    public var lowerBound: Double { center - 0.5 - (width - 1) / 2 }
    /// Input at and above which the output is ymax.
    public var upperBound: Double { center - 0.5 + (width - 1) / 2 }

    /// Reference (scalar) evaluation into [ymin, ymax].
    public func apply(_ x: Double, ymin: Double = 0, ymax: Double = 1) -> Double {
        if x <= lowerBound { return ymin }
        if x > upperBound { return ymax }
        if width <= 1 { return ymax }
        return ((x - (center - 0.5)) / (width - 1) + 0.5) * (ymax - ymin) + ymin
    }

    public var description: String { "C\(center)/W\(width)" }
}

/// Window presets by anatomy (centre/width in HU, common radiology reading windows).
public enum WindowPreset: String, Sendable, Codable, CaseIterable {
    case brain, subdural, stroke, bone, lung, mediastinum, softTissue = "soft-tissue", abdomen, liver

    public var window: VOIWindow {
        switch self {
        case .brain: VOIWindow(center: 40, width: 80)
        case .subdural: VOIWindow(center: 75, width: 215)
        case .stroke: VOIWindow(center: 40, width: 40)
        case .bone: VOIWindow(center: 400, width: 1800)
        case .lung: VOIWindow(center: -600, width: 1500)
        case .mediastinum: VOIWindow(center: 50, width: 350)
        case .softTissue: VOIWindow(center: 40, width: 400)
        case .abdomen: VOIWindow(center: 60, width: 400)
        case .liver: VOIWindow(center: 30, width: 150)
        }
    }

    /// Default reading window for a Body Part Examined value (case-insensitive, DICOM
    /// defined terms and a few common free-text variants); nil when unknown.
    public static func forBodyPart(_ bodyPart: String?) -> WindowPreset? {
        guard let raw = bodyPart?.uppercased(), !raw.isEmpty else { return nil }
        let part = raw.replacingSpaces()
        switch part {
        case "HEAD", "BRAIN", "SKULL", "HEADNECK": return .brain
        case "CHEST", "LUNG", "THORAX": return .lung
        case "MEDIASTINUM", "HEART": return .mediastinum
        case "ABDOMEN", "PELVIS", "ABDOMENPELVIS", "CHESTABDOMEN", "CHESTABDOMENPELVIS": return .abdomen
        case "LIVER": return .liver
        case "SPINE", "CSPINE", "TSPINE", "LSPINE", "EXTREMITY", "HIP", "KNEE", "SHOULDER": return .bone
        case "NECK": return .softTissue
        default: return nil
        }
    }
}

extension String {
    fileprivate func replacingSpaces() -> String {
        String(unicodeScalars.filter { $0 != " " && $0 != "_" && $0 != "-" }.map(Character.init))
    }
}
