import GridContract
import RadGridCore

/// What the gateway learns from an instance's header; no patient data.
public struct InstanceHeader: Sendable, Hashable {
    public var study: StudyUID
    public var series: SeriesUID
    public var sop: SOPInstanceUID
    public var modality: String
    public var bodyPart: String

    public init(study: StudyUID, series: SeriesUID, sop: SOPInstanceUID, modality: String, bodyPart: String) {
        self.study = study
        self.series = series
        self.sop = sop
        self.modality = modality
        self.bodyPart = bodyPart
    }
}

/// One instance of a study as indexed at intake.
public struct InstanceEntry: Sendable, Hashable {
    public var sop: SOPInstanceUID
    public var series: SeriesUID?
    public var bytes: Int64
    public var sha256: String
    public var modality: String
}

/// Errors of the study store.
public struct StudyStoreError: CodedError, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        /// The study belongs to another site.
        public static let forbidden = Code(rawValue: "study.forbidden")
        public static let unknown = Code(rawValue: "study.unknown")
        /// The event does not apply to the study as it is (e.g. a requeue of a reported study).
        public static let notApplicable = Code(rawValue: "study.notApplicable")
        public static let invalidInput = Code(rawValue: "study.invalidInput")
        /// Other processes kept changing the study; the change was given up (retried later).
        public static let contended = Code(rawValue: "study.contended")
        /// A stored record could not be read.
        public static let malformedRecord = Code(rawValue: "study.malformedRecord")
    }

    public let codeValue: Code
    public let message: String
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, _ message: String) {
        self.codeValue = code
        self.message = message
    }
}
