import Audit
import DICOM
import DICOMCodecs
import DIMSE
import DICOMWeb
import Gateway
import GridContract
import Logging
import Metrics
import NIOCore
import RadGridCore
import StudyLifecycle
import StudyStore
import Synchronization

/// The grid's side of the C-STORE SCP: who may associate (calling AE title, source address,
/// user identity, concurrency bounds), each instance through the same intake as STOW-RS, and
/// the studies of an association committed when it is released.
public final class DIMSEIntake: StorageSCPDelegate {
    public struct Limits: Sendable {
        public var maxAssociations = 64
        /// Per site unless its registration says otherwise.
        public var maxAssociationsPerSite = 8
        public init() {}
    }

    struct Open: Sendable {
        var site: SiteID
        var studies: Set<StudyUID> = []
        var lastTouch: UInt64 = 0
    }

    struct State: Sendable {
        var total = 0
        var perSite: [SiteID: Int] = [:]
        var open: [UInt64: Open] = [:]
    }

    let network: SiteNetwork
    let tokens: SiteTokens
    let intake: InstanceIntake
    let backpressure: Backpressure
    let store: StudyStore
    let machine: StudyStateMachine
    let limits: Limits
    let logger: Logger
    let state = Mutex(State())
    let policies: SitePolicies
    let associationsGauge = Gauge(label: "radgrid_dimse_associations")

    public init(network: SiteNetwork, tokens: SiteTokens, intake: InstanceIntake, backpressure: Backpressure, store: StudyStore,
                machine: StudyStateMachine, limits: Limits = Limits(), logger: Logger) {
        self.network = network
        self.tokens = tokens
        self.intake = intake
        self.backpressure = backpressure
        self.store = store
        self.machine = machine
        self.limits = limits
        self.logger = logger
        policies = SitePolicies(client: store.client, prefix: store.prefix)
    }

    /// Every syntax the grid decodes: native, deflated, RLE, and each compressed syntax with a codec.
    public static var acceptedTransferSyntaxes: Set<String> { TransferSyntax.receivableUIDs }

    // MARK: StorageSCPDelegate

    public func admit(_ request: AssociateRequest, peer: String) async -> Admission {
        let caller: SiteNetwork.Caller?
        do {
            caller = try await network.caller(aeTitle: request.callingAETitle)
        } catch {
            logger.warning("cannot read the AE registry", metadata: ["error": "\(error)"])
            return .reject(.temporaryCongestion, why: "AE registry unavailable")
        }
        guard let caller, let site = try? SiteID(caller.site) else {
            return .reject(.callingAETitleNotRecognized, why: "calling AE title \(request.callingAETitle) is not registered")
        }
        guard caller.allows(peer: peer) else {
            return .reject(.callingAETitleNotRecognized, why: "calling AE title \(request.callingAETitle) may not call from \(peer)")
        }
        if let identity = request.userInformation.userIdentity {
            guard identity.kind == .usernameAndPasscode, identity.username == site.rawValue,
                  let owner = try? await tokens.site(forToken: identity.passcode), owner == site.rawValue else {
                return .reject(.noReasonGiven, why: "user identity of \(request.callingAETitle) was not accepted")
            }
        } else if caller.requireIdentity {
            return .reject(.noReasonGiven, why: "\(request.callingAETitle) must send a user identity")
        }
        // The site's policy: C-STORE carries no consent reference, so a site that must send one
        // uses STOW-RS; a site at its open-studies quota is asked to come back later.
        do {
            let policy = try await policies.policy(for: site)
            if policy.requireConsent {
                return .reject(.noReasonGiven, why: "site \(site) must send a consent reference with each upload; C-STORE carries none (use STOW-RS)")
            }
            try await policies.admitOpenStudies(site: site, policy: policy, priority: .routine, into: nil)
        } catch let error as GatewayError {
            return .reject(.temporaryCongestion, why: error.message)
        } catch {
            logger.warning("cannot read the site policy", metadata: ["error": "\(error)"])
            return .reject(.temporaryCongestion, why: "site policy unavailable")
        }
        let perSite = caller.maxAssociations > 0 ? caller.maxAssociations : limits.maxAssociationsPerSite
        let admitted = state.withLock { state -> Bool in
            guard state.total < limits.maxAssociations, state.perSite[site, default: 0] < perSite else { return false }
            state.total += 1
            state.perSite[site, default: 0] += 1
            return true
        }
        guard admitted else {
            Counter(label: "radgrid_dimse_rejected_total", dimensions: [("reason", "limit")]).increment()
            return .reject(.localLimitExceeded, why: "too many concurrent associations (site \(site) or the server)")
        }
        associationsGauge.record(state.withLock { $0.total })
        try? await store.beginUpload(site: site)
        return .accept(owner: site.rawValue, identityResponse: request.userInformation.userIdentity == nil ? nil : [])
    }

    public func store(_ instance: ReceivedInstance, association: AssociationInfo) async -> StoreStatus {
        guard let site = try? SiteID(association.owner) else { return StoreStatus(DIMSEStatus.processingFailure) }
        do {
            if let reason = try await backpressure.refusal() {
                return StoreStatus(DIMSEStatus.outOfResources, comment: String(reason.prefix(64)))
            }
        } catch {
            return StoreStatus(DIMSEStatus.outOfResources, comment: "the grid's store is unavailable")
        }
        await keepUploadMarked(association.id, site: site)
        let file = Part10.file(dataSet: instance.dataSet, sopClassUID: instance.sopClassUID, sopInstanceUID: instance.sopInstanceUID,
                               transferSyntaxUID: instance.transferSyntaxUID, sourceAETitle: association.callingAETitle,
                               implementationClassUID: DICOMWriter.implementationClassUID, implementationVersionName: "RADGRID_DIMSE_1")
        let outcome = await intake.ingest(file, site: site, priority: Priority(cStorePriority: instance.priority), expectedStudy: nil,
                                          expectedInstance: instance.sopInstanceUID)
        switch outcome {
        case .stored(let header, let sopClass, _):
            state.withLock { _ = $0.open[association.id, default: Open(site: site)].studies.insert(header.study) }
            // Stored, but its data set names another SOP class than the request did: a warning.
            if sopClass != instance.sopClassUID || instance.contextAbstractSyntax != instance.sopClassUID {
                return StoreStatus(DIMSEStatus.dataSetDoesNotMatchSOPClassWarning, comment: "stored as its data set's SOP class")
            }
            return StoreStatus(DIMSEStatus.success)
        case .failed(_, _, let reason, let error):
            logger.info("instance refused", metadata: ["site": "\(site)", "code": "\(error.code)"])
            return StoreStatus(Self.status(for: reason), comment: String(error.code.prefix(64)))
        }
    }

    public func ended(_ association: AssociationInfo, released: Bool) async {
        guard let site = try? SiteID(association.owner) else { return }
        let open = state.withLock { state -> Open? in
            state.total -= 1
            state.perSite[site, default: 1] -= 1
            if state.perSite[site] == 0 { state.perSite[site] = nil }
            return state.open.removeValue(forKey: association.id)
        }
        associationsGauge.record(state.withLock { $0.total })
        try? await store.endUpload(site: site)
        // A released association is the sender saying "that was everything"; an aborted one
        // leaves its studies to the stable-age rule.
        guard released, let open else { return }
        for study in open.studies.sorted(by: { $0.rawValue < $1.rawValue }) {
            do {
                // The site's own study under that UID (its copy, when another site holds the UID).
                let key = try await store.resolve(site: site, study: study)
                _ = try await store.handle(.commit(reason: "association-release"), study: key, actor: AuditActor(.site, site.rawValue), machine: machine)
            } catch {
                logger.warning("commit on release failed; stable age will commit the study", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A long association keeps its site's upload mark alive (the stable-age commit waits).
    func keepUploadMarked(_ id: UInt64, site: SiteID) async {
        let now = WallClock.monotonicNanoseconds()
        let due = state.withLock { state -> Bool in
            var open = state.open[id, default: Open(site: site)]
            defer { state.open[id] = open }
            guard now - open.lastTouch > 10_000_000_000 else { return false }
            open.lastTouch = now
            return true
        }
        if due { try? await store.touchUpload(site: site) }
    }

    static func status(for reason: InstanceIntake.FailureReason) -> UInt16 {
        switch reason {
        case .outOfResources: DIMSEStatus.outOfResources
        case .dataSetDoesNotMatchSOPClass: DIMSEStatus.dataSetDoesNotMatchSOPClass
        case .cannotUnderstand, .transferSyntaxNotSupported: DIMSEStatus.cannotUnderstand
        case .notAuthorized: DIMSEStatus.refusedNotAuthorized
        case .processingFailure: DIMSEStatus.processingFailure
        }
    }
}
