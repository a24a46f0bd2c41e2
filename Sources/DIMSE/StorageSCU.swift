import Logging
import NIOCore
import NIOPosix

/// A C-STORE (and C-ECHO) service class user: opens an association to a peer, sends Part 10
/// files in the syntaxes they are in, and releases. One association per call.
public struct StorageSCU: Sendable {
    public struct Peer: Sendable, Equatable, Codable {
        public var aeTitle: String
        public var host: String
        public var port: Int
        public init(aeTitle: String, host: String, port: Int) {
            self.aeTitle = aeTitle
            self.host = host
            self.port = port
        }
    }

    public struct Configuration: Sendable {
        public var callingAETitle = "RADGRID"
        public var maxPDULength: UInt32 = 1 << 20
        public var connectTimeout: TimeAmount = .seconds(10)
        /// ARTIM and the wait for any answer.
        public var replyTimeout: TimeAmount = .seconds(60)
        public var userIdentity: UserIdentity?
        public var implementationClassUID = "2.25.329800735698586629295641978511506172918"
        public var implementationVersionName = "RADGRID_DIMSE_1"
        public init() {}
    }

    public let configuration: Configuration
    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// The status the peer answered for each file, in order.
    public func store(_ files: [[UInt8]], to peer: Peer) async throws -> [UInt16] {
        var metas: [Part10.Meta] = []
        for file in files { metas.append(try Part10.meta(of: file)) }
        var contexts: [ProposedContext] = []
        var contextFor: [String: UInt8] = [:]
        for meta in metas {
            let key = meta.sopClassUID + "|" + meta.transferSyntaxUID
            guard contextFor[key] == nil else { continue }
            let id = UInt8(2 * contexts.count + 1)
            guard contexts.count < 128 else { throw DIMSEError(code: "dimse.tooManyContexts", message: "more than 128 SOP class and syntax pairs in one call", abort: nil) }
            contextFor[key] = id
            contexts.append(ProposedContext(id: id, abstractSyntax: meta.sopClassUID, transferSyntaxes: [meta.transferSyntaxUID]))
        }
        return try await withAssociation(to: peer, contexts: contexts) { association in
            var statuses: [UInt16] = []
            for (file, meta) in zip(files, metas) {
                let id = contextFor[meta.sopClassUID + "|" + meta.transferSyntaxUID]!
                guard association.accepted.contains(id) else {
                    statuses.append(DIMSEStatus.sopClassNotSupported)
                    continue
                }
                var dataSet = ByteBuffer()
                dataSet.writeBytes(file[meta.dataSetOffset...])
                let request = Command.storeRequest(messageID: association.nextMessageID(), sopClass: meta.sopClassUID, sopInstance: meta.sopInstanceUID)
                statuses.append(try await association.request(request, contextID: id, dataSet: dataSet).status ?? DIMSEStatus.processingFailure)
            }
            return statuses
        }
    }

    /// C-ECHO: the peer's status (0000 when it answers).
    public func echo(_ peer: Peer) async throws -> UInt16 {
        let context = ProposedContext(id: 1, abstractSyntax: verificationSOPClass, transferSyntaxes: [TransferSyntaxUID.implicitVRLittleEndian])
        return try await withAssociation(to: peer, contexts: [context]) { association in
            guard association.accepted.contains(1) else { throw DIMSEError(code: "dimse.notAccepted", message: "the peer refused the Verification context", abort: nil) }
            return try await association.request(.echoRequest(messageID: association.nextMessageID()), contextID: 1, dataSet: nil).status ?? DIMSEStatus.processingFailure
        }
    }

    /// An open association, for the body of `withAssociation`.
    public final class Association {
        public let accepted: Set<UInt8>
        let peerMaxPDU: UInt32
        var pdus: NIOAsyncChannelInboundStream<PDU>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<PDU>
        var messageID: UInt16 = 0

        init(accepted: Set<UInt8>, peerMaxPDU: UInt32, pdus: NIOAsyncChannelInboundStream<PDU>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<PDU>) {
            self.accepted = accepted
            self.peerMaxPDU = peerMaxPDU
            self.pdus = pdus
            self.outbound = outbound
        }

        public func nextMessageID() -> UInt16 {
            messageID &+= 1
            return messageID
        }

        /// Sends one request and waits for its response's command.
        public func request(_ command: Command, contextID: UInt8, dataSet: ByteBuffer?) async throws -> Command {
            for pdu in MessageFragmenter.pdus(contextID: contextID, command: command, dataSet: dataSet, maxPDULength: peerMaxPDU) {
                try await outbound.write(pdu)
            }
            var assembler = MessageAssembler(maxDataSetBytes: 1 << 20)
            while let pdu = try await pdus.next() {
                switch pdu {
                case .data(let values):
                    for value in values {
                        if let message = try assembler.append(value) { return message.command }
                    }
                case .abort(let abort): throw DIMSEError.aborted(abort)
                default: throw DIMSEError.unexpected("\(pdu.name) arrived while waiting for a response")
                }
            }
            throw DIMSEError.closed("the peer closed the connection before answering")
        }
    }

    func withAssociation<T: Sendable>(to peer: Peer, contexts: [ProposedContext], _ body: (Association) async throws -> T) async throws -> T {
        let configuration = configuration
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: peer.host, port: peer.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try StorageSCP.configurePipeline(channel, maxPDULength: Int(configuration.maxPDULength),
                                                     timeouts: AssociationTimeouts(artim: configuration.replyTimeout, idle: configuration.replyTimeout, lifetime: .hours(4)))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var information = UserInformation(maxPDULength: configuration.maxPDULength, implementationClassUID: configuration.implementationClassUID,
                                              implementationVersionName: configuration.implementationVersionName)
            information.userIdentity = configuration.userIdentity
            try await outbound.write(.associateRequest(AssociateRequest(calledAETitle: peer.aeTitle, callingAETitle: configuration.callingAETitle,
                                                                        presentationContexts: contexts, userInformation: information)))
            var pdus = inbound.makeAsyncIterator()
            guard let answer = try await pdus.next() else { throw DIMSEError.closed("the peer closed the connection before answering A-ASSOCIATE-RQ") }
            let accept: AssociateAccept
            switch answer {
            case .associateAccept(let ac): accept = ac
            case .associateReject(let rj): throw DIMSEError.rejected(rj)
            case .abort(let abort): throw DIMSEError.aborted(abort)
            default: throw DIMSEError.unexpected("\(answer.name) arrived instead of an association answer")
            }
            let association = Association(accepted: Set(accept.presentationContexts.filter { $0.result == .acceptance }.map(\.id)),
                                          peerMaxPDU: accept.userInformation.maxPDULength, pdus: pdus, outbound: outbound)
            let result: T
            do {
                result = try await body(association)
            } catch {
                try? await outbound.write(.abort(.byUser))
                throw error
            }
            try await outbound.write(.releaseRequest)
            while let pdu = try await association.pdus.next() {
                if case .releaseReply = pdu { break }
                if case .abort(let abort) = pdu { throw DIMSEError.aborted(abort) }
            }
            return result
        }
    }
}
