import DICOM
import DICOMWeb
import GridContract
import RadGridCore

/// What every intake (the central gateway, the DICOM gateway, the hospital edge) checks before
/// it accepts an instance: within the size limit, a complete readable file (a deflated data set
/// inflating only to that limit), pixel data the grid can decode, its study, series and
/// instance UIDs, and the UIDs the request announced. So a sender hears a refusal at once,
/// with the same reason wherever it sent.
public enum IntakeCheck {
    /// PS3.4 / PS3.18 failure reasons of a refused instance.
    public enum FailureReason: UInt16, Sendable {
        case processingFailure = 0x0110
        case notAuthorized = 0x0124
        case outOfResources = 0xA700
        case dataSetDoesNotMatchSOPClass = 0xA900
        case cannotUnderstand = 0xC000
        /// The grid has no decoder for the instance's transfer syntax (MPEG/HEVC video, ...).
        case transferSyntaxNotSupported = 0xC122
    }

    public struct Limits: Sendable {
        public var maxInstanceBytes: Int
        /// Largest decoded pixel array an accepted instance may declare.
        public var maxDecodedBytes: Int
        public init(maxInstanceBytes: Int, maxDecodedBytes: Int = 1 << 30) {
            self.maxInstanceBytes = maxInstanceBytes
            self.maxDecodedBytes = maxDecodedBytes
        }
    }

    /// An instance that passed, with what was read of it.
    public struct Accepted: Sendable {
        public var file: DICOMFile
        public var study: StudyUID
        public var series: SeriesUID
        public var sop: SOPInstanceUID
        public var sopClass: String?
    }

    public struct Refusal: Error, Sendable {
        public var sopClass: String?
        public var sop: String?
        public var reason: FailureReason
        public var error: any CodedError
        public init(sopClass: String? = nil, sop: String? = nil, reason: FailureReason, error: any CodedError) {
            self.sopClass = sopClass
            self.sop = sop
            self.reason = reason
            self.error = error
        }
    }

    public static func check(_ bytes: [UInt8], limits: Limits, expectedStudy: StudyUID?, expectedInstance: String? = nil) -> Result<Accepted, Refusal> {
        guard bytes.count <= limits.maxInstanceBytes else {
            return .failure(Refusal(reason: .outOfResources,
                                    error: GatewayError.tooLarge("instance of \(bytes.count) bytes is above the limit of \(limits.maxInstanceBytes)")))
        }
        let file: DICOMFile
        do {
            // A full structural read (not a header-only one) so truncated files are refused.
            file = try DICOMFile.read(bytes, options: ReadOptions(maxInflatedBytes: limits.maxInstanceBytes))
        } catch let error as DICOMError {
            return .failure(Refusal(reason: .cannotUnderstand, error: error))
        } catch {
            return .failure(Refusal(reason: .cannotUnderstand, error: GatewayError.badRequest("unreadable DICOM")))
        }
        // Accepted means processable: pixel data the grid could never decode is refused here,
        // with its reason, instead of failing in a worker later.
        do {
            try file.checkPixelsDecodable(options: DecodeOptions(maxOutputBytes: limits.maxDecodedBytes))
        } catch let error as DICOMError {
            let reason: FailureReason = error.code == DICOMError.unsupportedTransferSyntaxCode ? .transferSyntaxNotSupported : .cannotUnderstand
            return .failure(Refusal(sopClass: file.dataSet.string(.sopClassUID), sop: file.dataSet.string(.sopInstanceUID), reason: reason, error: error))
        } catch {
            return .failure(Refusal(sopClass: file.dataSet.string(.sopClassUID), sop: file.dataSet.string(.sopInstanceUID), reason: .cannotUnderstand,
                                    error: GatewayError.badRequest("pixel data cannot be decoded")))
        }
        let dataSet = file.dataSet
        let sopClass = dataSet.string(.sopClassUID) ?? file.meta.string(DICOM.Tag(0x0002, 0x0002))
        let sop = dataSet.string(.sopInstanceUID) ?? file.meta.string(DICOM.Tag(0x0002, 0x0003))
        guard let studyText = dataSet.string(.studyInstanceUID), let seriesText = dataSet.string(.seriesInstanceUID), let sop else {
            return .failure(Refusal(sopClass: sopClass, sop: sop, reason: .dataSetDoesNotMatchSOPClass,
                                    error: GatewayError.badRequest("instance lacks StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")))
        }
        let accepted: Accepted
        do {
            accepted = Accepted(file: file, study: try StudyUID(studyText), series: try SeriesUID(seriesText), sop: try SOPInstanceUID(sop), sopClass: sopClass)
        } catch let error as any CodedError {
            return .failure(Refusal(sopClass: sopClass, reason: .cannotUnderstand, error: error))
        } catch {
            return .failure(Refusal(sopClass: sopClass, reason: .cannotUnderstand, error: GatewayError.badRequest("invalid UID")))
        }
        if let expectedInstance, expectedInstance != sop {
            return .failure(Refusal(sopClass: sopClass, sop: sop, reason: .dataSetDoesNotMatchSOPClass,
                                    error: GatewayError.badRequest("the data set's SOP Instance UID is not the one the request announced")))
        }
        if let expectedStudy, expectedStudy != accepted.study {
            return .failure(Refusal(sopClass: sopClass, sop: sop, reason: .dataSetDoesNotMatchSOPClass,
                                    error: GatewayError.badRequest("instance belongs to another study than the one in the URL")))
        }
        return .success(accepted)
    }
}
