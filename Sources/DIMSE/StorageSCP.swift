import Logging
import Metrics
import NIOCore
import NIOPosix
import RadGridCore
import ServiceLifecycle
import Synchronization

/// What an association asks of its owner; the SCP itself knows nothing of sites or studies.
public protocol StorageSCPDelegate: Sendable {
    /// Accept or refuse an association before any presentation context is looked at.
    func admit(_ request: AssociateRequest, peer: String) async -> Admission
    /// Store one received instance; the status is what the C-STORE response carries.
    func store(_ instance: ReceivedInstance, association: AssociationInfo) async -> StoreStatus
    /// The association ended: released in good order, or aborted / timed out / dropped.
    func ended(_ association: AssociationInfo, released: Bool) async
}

public enum Admission: Sendable {
    /// `owner` is what the delegate recognised (a site); `identityResponse` answers a user
    /// identity that asked for a positive response.
    case accept(owner: String, identityResponse: [UInt8]?)
    case reject(AssociateReject, why: String)
}

/// An accepted association as the delegate sees it.
public struct AssociationInfo: Sendable {
    public let id: UInt64
    public let callingAETitle: String
    public let calledAETitle: String
    public let peer: String
    public let owner: String
}

public struct ReceivedInstance: Sendable {
    public var sopClassUID: String
    public var sopInstanceUID: String
    public var transferSyntaxUID: String
    /// The presentation context's abstract syntax (the command names the same class, or the
    /// instance arrived on another class's context).
    public var contextAbstractSyntax: String
    public var priority: UInt16
    public var dataSet: ByteBuffer
}

public struct StoreStatus: Sendable, Equatable {
    public var status: UInt16
    public var comment: String?
    public init(_ status: UInt16, comment: String? = nil) {
        self.status = status
        self.comment = comment
    }
}

/// A C-ECHO and C-STORE service class provider on the DICOM upper layer: one task per
/// association, PDUs framed and timed in the channel pipeline, messages handled in order.
public final class StorageSCP: Service, Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 11112
        public var aeTitle = "RADGRID"
        /// Largest P-DATA-TF PDU this side receives (advertised in the A-ASSOCIATE-AC).
        public var maxPDULength: UInt32 = 1 << 20
        /// Largest data set accepted; larger ones are answered A700 and dropped as they arrive.
        public var maxDataSetBytes = 512 << 20
        public var artim: TimeAmount = .seconds(30)
        public var idle: TimeAmount = .seconds(120)
        public var lifetime: TimeAmount = .hours(4)
        /// Abstract syntaxes accepted besides Verification.
        public var storageClasses: Set<String> = Set(StorageSOPClasses.all.keys)
        /// Transfer syntaxes accepted for storage; the first one the peer proposes wins.
        public var transferSyntaxes: Set<String> = [TransferSyntaxUID.implicitVRLittleEndian, TransferSyntaxUID.explicitVRLittleEndian]
        public var implementationClassUID = "2.25.329800735698586629295641978511506172918"
        public var implementationVersionName = "RADGRID_DIMSE_1"
        public init() {}
    }

    public let configuration: Configuration
    let delegate: any StorageSCPDelegate
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void
    private let nextID = Atomic<UInt64>(0)

    public init(configuration: Configuration, delegate: any StorageSCPDelegate, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.configuration = configuration
        self.delegate = delegate
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let configuration = configuration
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configurePipeline(channel, maxPDULength: Int(configuration.maxPDULength),
                                               timeouts: AssociationTimeouts(artim: configuration.artim, idle: configuration.idle, lifetime: configuration.lifetime))
                }
            }
        let port = server.channel.localAddress?.port ?? configuration.port
        logger.info("DIMSE SCP listening", metadata: ["ae": "\(configuration.aeTitle)", "port": "\(port)"])
        await onListening(port)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// Framing, then timers, then the async channel the association's task reads.
    static func configurePipeline(_ channel: any Channel, maxPDULength: Int, timeouts: AssociationTimeouts) throws -> NIOAsyncChannel<PDU, PDU> {
        let sync = channel.pipeline.syncOperations
        // Room for an A-ASSOCIATE-RQ with many contexts even when the P-DATA limit is small.
        try sync.addHandler(ByteToMessageHandler(PDUDecoder(maxLength: max(maxPDULength, 1 << 16) + 6)))
        try sync.addHandler(MessageToByteHandler(PDUEncoder()))
        try sync.addHandler(timeouts)
        return try NIOAsyncChannel<PDU, PDU>(wrappingChannelSynchronously: channel)
    }

    // MARK: One association

    func serve(_ connection: NIOAsyncChannel<PDU, PDU>) async {
        let peer = connection.channel.remoteAddress?.ipAddress ?? "unknown"
        Counter(label: "radgrid_dimse_connections_total").increment()
        do {
            try await connection.executeThenClose { inbound, outbound in
                var pdus = inbound.makeAsyncIterator()
                do {
                    try await self.associate(&pdus, outbound, peer: peer)
                } catch let error as DIMSEError {
                    self.logger.info("association ended with a protocol error", metadata: ["peer": "\(peer)", "code": "\(error.code)", "error": "\(error.message)"])
                    Counter(label: "radgrid_dimse_aborts_total", dimensions: [("code", error.code)]).increment()
                    if let abort = error.abort { try? await outbound.write(.abort(abort)) }
                }
            }
        } catch {
            logger.debug("connection closed", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    func associate(_ pdus: inout NIOAsyncChannelInboundStream<PDU>.AsyncIterator, _ outbound: NIOAsyncChannelOutboundWriter<PDU>, peer: String) async throws {
        guard let first = try await pdus.next() else { return }
        guard case .associateRequest(let request) = first else { throw DIMSEError.unexpected("\(first.name) arrived before A-ASSOCIATE-RQ") }
        if let refusal = preliminaryRefusal(request) {
            logger.info("association rejected", metadata: ["peer": "\(peer)", "calling": "\(request.callingAETitle)", "why": "\(refusal.why)"])
            Counter(label: "radgrid_dimse_rejected_total", dimensions: [("reason", refusal.code)]).increment()
            try await outbound.write(.associateReject(refusal.reject))
            return
        }
        let admission = await delegate.admit(request, peer: peer)
        guard case .accept(let owner, let identityResponse) = admission else {
            if case .reject(let reject, let why) = admission {
                logger.info("association rejected", metadata: ["peer": "\(peer)", "calling": "\(request.callingAETitle)", "why": "\(why)"])
                Counter(label: "radgrid_dimse_rejected_total", dimensions: [("reason", "policy")]).increment()
                try await outbound.write(.associateReject(reject))
            }
            return
        }
        let info = AssociationInfo(id: nextID.add(1, ordering: .relaxed).newValue, callingAETitle: request.callingAETitle,
                                   calledAETitle: request.calledAETitle, peer: peer, owner: owner)
        var released = false
        do {
            let contexts = negotiate(request)
            var userInformation = UserInformation(maxPDULength: configuration.maxPDULength, implementationClassUID: configuration.implementationClassUID,
                                                  implementationVersionName: configuration.implementationVersionName)
            // Roles: the requestor may be the SCU; this side never takes the SCU role (no C-GET).
            userInformation.roleSelections = request.userInformation.roleSelections.map { RoleSelection(sopClassUID: $0.sopClassUID, scuRole: $0.scuRole, scpRole: false) }
            if request.userInformation.userIdentity?.positiveResponseRequested == true { userInformation.userIdentityResponse = identityResponse ?? [] }
            try await outbound.write(.associateAccept(AssociateAccept(calledAETitle: request.calledAETitle, callingAETitle: request.callingAETitle,
                                                                      presentationContexts: contexts.answers, userInformation: userInformation)))
            released = try await exchange(&pdus, outbound, info: info, contexts: contexts.accepted, peerMaxPDU: request.userInformation.maxPDULength)
        } catch {
            await delegate.ended(info, released: false)
            throw error
        }
        await delegate.ended(info, released: released)
    }

    /// What is refused whoever asks: another application context, protocol version or called AE.
    func preliminaryRefusal(_ request: AssociateRequest) -> (reject: AssociateReject, why: String, code: String)? {
        if request.protocolVersion & 1 == 0 { return (.protocolVersionNotSupported, "protocol version \(request.protocolVersion)", "protocolVersion") }
        if request.applicationContext != dicomApplicationContext { return (.applicationContextNotSupported, "application context \(request.applicationContext)", "applicationContext") }
        if request.calledAETitle != configuration.aeTitle { return (.calledAETitleNotRecognized, "called AE title \(request.calledAETitle)", "calledAE") }
        return nil
    }

    struct AcceptedPresentation: Sendable {
        var abstractSyntax: String
        var transferSyntax: String
    }

    func negotiate(_ request: AssociateRequest) -> (answers: [AcceptedContext], accepted: [UInt8: AcceptedPresentation]) {
        var answers: [AcceptedContext] = []
        var accepted: [UInt8: AcceptedPresentation] = [:]
        for context in request.presentationContexts {
            let isEcho = context.abstractSyntax == verificationSOPClass
            guard isEcho || configuration.storageClasses.contains(context.abstractSyntax) else {
                answers.append(AcceptedContext(id: context.id, result: .abstractSyntaxNotSupported, transferSyntax: TransferSyntaxUID.implicitVRLittleEndian))
                continue
            }
            let syntaxes: Set<String> = isEcho ? [TransferSyntaxUID.implicitVRLittleEndian, TransferSyntaxUID.explicitVRLittleEndian] : configuration.transferSyntaxes
            guard let chosen = context.transferSyntaxes.first(where: syntaxes.contains) else {
                answers.append(AcceptedContext(id: context.id, result: .transferSyntaxesNotSupported, transferSyntax: TransferSyntaxUID.implicitVRLittleEndian))
                continue
            }
            answers.append(AcceptedContext(id: context.id, result: .acceptance, transferSyntax: chosen))
            accepted[context.id] = AcceptedPresentation(abstractSyntax: context.abstractSyntax, transferSyntax: chosen)
        }
        return (answers, accepted)
    }

    /// Messages until A-RELEASE-RQ (true) or the peer's A-ABORT / a dropped connection (false).
    func exchange(_ pdus: inout NIOAsyncChannelInboundStream<PDU>.AsyncIterator, _ outbound: NIOAsyncChannelOutboundWriter<PDU>,
                  info: AssociationInfo, contexts: [UInt8: AcceptedPresentation], peerMaxPDU: UInt32) async throws -> Bool {
        var assembler = MessageAssembler(maxDataSetBytes: configuration.maxDataSetBytes)
        while let pdu = try await pdus.next() {
            switch pdu {
            case .data(let values):
                for value in values {
                    guard contexts[value.contextID] != nil else {
                        throw DIMSEError.malformed("presentation context \(value.contextID) was not accepted")
                    }
                    guard let message = try assembler.append(value) else { continue }
                    let response = await respond(to: message, presentation: contexts[message.contextID]!, info: info)
                    for pdu in MessageFragmenter.pdus(contextID: message.contextID, command: response, dataSet: nil, maxPDULength: peerMaxPDU) {
                        try await outbound.write(pdu)
                    }
                }
            case .releaseRequest:
                guard !assembler.isMidMessage else { throw DIMSEError.unexpected("A-RELEASE-RQ arrived in the middle of a message") }
                try await outbound.write(.releaseReply)
                return true
            case .abort:
                return false
            default:
                throw DIMSEError.unexpected("\(pdu.name) arrived on an established association")
            }
        }
        return false
    }

    func respond(to message: Message, presentation: AcceptedPresentation, info: AssociationInfo) async -> Command {
        let command = message.command
        switch command.field {
        case .cEchoRequest:
            Counter(label: "radgrid_dimse_requests_total", dimensions: [("command", "echo"), ("status", "0000")]).increment()
            return .response(to: command, status: DIMSEStatus.success)
        case .cStoreRequest:
            let result = await store(message, presentation: presentation, info: info)
            Counter(label: "radgrid_dimse_requests_total", dimensions: [("command", "store"), ("status", hex4(result.status))]).increment()
            return .response(to: command, status: result.status, errorComment: result.comment)
        default:
            Counter(label: "radgrid_dimse_requests_total", dimensions: [("command", "other"), ("status", "0211")]).increment()
            return .response(to: command, status: DIMSEStatus.unrecognizedOperation, errorComment: "only C-ECHO and C-STORE are provided")
        }
    }

    func store(_ message: Message, presentation: AcceptedPresentation, info: AssociationInfo) async -> StoreStatus {
        let command = message.command
        if message.dataSetDiscarded {
            return StoreStatus(DIMSEStatus.outOfResources, comment: "data set larger than \(configuration.maxDataSetBytes) bytes")
        }
        guard let sopClass = command.string(.affectedSOPClassUID), let sop = command.string(.affectedSOPInstanceUID), !sop.isEmpty,
              let dataSet = message.dataSet, dataSet.readableBytes > 0 else {
            return StoreStatus(DIMSEStatus.cannotUnderstand, comment: "C-STORE-RQ lacks its SOP class, SOP instance or data set")
        }
        let instance = ReceivedInstance(sopClassUID: sopClass, sopInstanceUID: sop, transferSyntaxUID: presentation.transferSyntax,
                                        contextAbstractSyntax: presentation.abstractSyntax, priority: command.uint16(.priority) ?? 0, dataSet: dataSet)
        return await delegate.store(instance, association: info)
    }
}

func hex4(_ value: UInt16) -> String {
    let text = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - text.count)) + text
}
