import DICOM
import DIMSE
import GridContract
import Logging
import NIOConcurrencyHelpers
import RadGridCore

/// The edge's C-STORE side: the hospital's PACS and modalities associate by AE title (an
/// allow-list; any AE when the list is empty), each instance is spooled durably before the
/// C-STORE response says success, and a released association completes its studies.
public final class EdgeDIMSEIntake: StorageSCPDelegate {
    let intake: EdgeIntake
    /// Calling AE titles allowed to store; empty allows every caller.
    let allowedAETitles: Set<String>
    let maxAssociations: Int
    let logger: Logger
    private let open = NIOLockedValueBox([UInt64: Set<StudyUID>]())
    private let count = NIOLockedValueBox(0)

    public init(intake: EdgeIntake, allowedAETitles: Set<String>, maxAssociations: Int = 32, logger: Logger) {
        self.intake = intake
        self.allowedAETitles = allowedAETitles
        self.maxAssociations = maxAssociations
        self.logger = logger
    }

    public func admit(_ request: AssociateRequest, peer: String) async -> Admission {
        guard allowedAETitles.isEmpty || allowedAETitles.contains(request.callingAETitle) else {
            return .reject(.callingAETitleNotRecognized, why: "calling AE title \(request.callingAETitle) is not on the edge's allow-list")
        }
        let admitted = count.withLockedValue { count -> Bool in
            guard count < maxAssociations else { return false }
            count += 1
            return true
        }
        guard admitted else { return .reject(.localLimitExceeded, why: "too many concurrent associations") }
        return .accept(owner: request.callingAETitle, identityResponse: request.userInformation.userIdentity == nil ? nil : [])
    }

    public func store(_ instance: ReceivedInstance, association: AssociationInfo) async -> StoreStatus {
        let file = Part10.file(dataSet: instance.dataSet, sopClassUID: instance.sopClassUID, sopInstanceUID: instance.sopInstanceUID,
                               transferSyntaxUID: instance.transferSyntaxUID, sourceAETitle: association.callingAETitle,
                               implementationClassUID: DICOMWriter.implementationClassUID, implementationVersionName: "RADGRID_EDGE_1")
        let outcome = await intake.accept([file], priority: Priority(cStorePriority: instance.priority), expectedStudy: nil,
                                          expectedInstances: [instance.sopInstanceUID])[0]
        switch outcome {
        case .stored(let study, _, _):
            open.withLockedValue { _ = $0[association.id, default: []].insert(study) }
            return StoreStatus(DIMSEStatus.success)
        case .refused(_, _, let reason, let error):
            logger.info("instance refused", metadata: ["calling_ae": "\(association.callingAETitle)", "code": "\(error.code)"])
            return StoreStatus(reason.rawValue, comment: String(error.message.prefix(64)))
        }
    }

    public func ended(_ association: AssociationInfo, released: Bool) async {
        count.withLockedValue { $0 -= 1 }
        let studies = open.withLockedValue { $0.removeValue(forKey: association.id) } ?? []
        // A release is the sender saying "that was everything"; after an abort the stable age decides.
        guard released, !studies.isEmpty else { return }
        do {
            try await intake.spool.markComplete(Array(studies), reason: "association-release")
        } catch {
            logger.error("cannot mark studies complete", metadata: ["error": "\(error)"])
        }
    }

}
