import NIOCore
import RadGridCore

/// A protocol failure on an association, with the A-ABORT the peer is sent for it.
public struct DIMSEError: CodedError, Equatable {
    public let code: String
    public let message: String
    /// What the peer is told; nil when the connection is simply closed (it already went away).
    public let abort: Abort?

    public init(code: String, message: String, abort: Abort? = .notSpecified) {
        self.code = code
        self.message = message
        self.abort = abort
    }

    public static func malformed(_ message: String) -> DIMSEError { .init(code: "dimse.malformedPDU", message: message, abort: .invalidParameterValue) }
    public static func unrecognizedPDU(_ type: UInt8) -> DIMSEError {
        .init(code: "dimse.unrecognizedPDU", message: "PDU type 0x\(String(type, radix: 16)) is not defined", abort: .unrecognizedPDU)
    }
    public static func unexpected(_ message: String) -> DIMSEError { .init(code: "dimse.unexpectedPDU", message: message, abort: .unexpectedPDU) }
    public static func tooLarge(_ length: Int, limit: Int) -> DIMSEError {
        .init(code: "dimse.pduTooLarge", message: "a PDU of \(length) bytes is above the negotiated limit of \(limit)", abort: .invalidParameterValue)
    }
    public static func timeout(_ message: String) -> DIMSEError { .init(code: "dimse.timeout", message: message, abort: .notSpecified) }
    public static func rejected(_ reject: AssociateReject) -> DIMSEError {
        .init(code: "dimse.rejected", message: "association rejected (result \(reject.result.rawValue), source \(reject.source), reason \(reject.reason))", abort: nil)
    }
    public static func aborted(_ abort: Abort) -> DIMSEError {
        .init(code: "dimse.aborted", message: "the peer aborted the association (source \(abort.source), reason \(abort.reason))", abort: nil)
    }
    public static func closed(_ message: String) -> DIMSEError { .init(code: "dimse.closed", message: message, abort: nil) }
}

// MARK: Encoding

extension PDU {
    /// Writes the whole PDU, header included.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(type)
        buffer.writeInteger(UInt8(0))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        switch self {
        case .associateRequest(let rq):
            Self.writeAssociateHeader(&buffer, version: rq.protocolVersion, called: rq.calledAETitle, calling: rq.callingAETitle)
            Self.writeItem(&buffer, 0x10) { $0.writeString(rq.applicationContext) }
            for context in rq.presentationContexts {
                Self.writeItem(&buffer, 0x20) { item in
                    item.writeInteger(context.id)
                    item.writeBytes([0, 0, 0])
                    Self.writeItem(&item, 0x30) { $0.writeString(context.abstractSyntax) }
                    for syntax in context.transferSyntaxes { Self.writeItem(&item, 0x40) { $0.writeString(syntax) } }
                }
            }
            Self.writeUserInformation(&buffer, rq.userInformation)
        case .associateAccept(let ac):
            Self.writeAssociateHeader(&buffer, version: 1, called: ac.calledAETitle, calling: ac.callingAETitle)
            Self.writeItem(&buffer, 0x10) { $0.writeString(ac.applicationContext) }
            for context in ac.presentationContexts {
                Self.writeItem(&buffer, 0x21) { item in
                    item.writeInteger(context.id)
                    item.writeInteger(UInt8(0))
                    item.writeInteger(context.result.rawValue)
                    item.writeInteger(UInt8(0))
                    Self.writeItem(&item, 0x40) { $0.writeString(context.transferSyntax) }
                }
            }
            Self.writeUserInformation(&buffer, ac.userInformation)
        case .associateReject(let rj):
            buffer.writeBytes([0, rj.result.rawValue, rj.source, rj.reason])
        case .data(let values):
            for value in values {
                buffer.writeInteger(UInt32(value.fragment.readableBytes + 2))
                buffer.writeInteger(value.contextID)
                buffer.writeInteger(UInt8((value.isCommand ? 1 : 0) | (value.isLast ? 2 : 0)))
                var fragment = value.fragment
                buffer.writeBuffer(&fragment)
            }
        case .releaseRequest, .releaseReply:
            buffer.writeInteger(UInt32(0))
        case .abort(let abort):
            buffer.writeBytes([0, 0, abort.source, abort.reason])
        }
        buffer.setInteger(UInt32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
    }

    static func writeAssociateHeader(_ buffer: inout ByteBuffer, version: UInt16, called: String, calling: String) {
        buffer.writeInteger(version)
        buffer.writeInteger(UInt16(0))
        buffer.writeBytes(paddedAE(called))
        buffer.writeBytes(paddedAE(calling))
        buffer.writeRepeatingByte(0, count: 32)
    }

    /// An AE title as the 16 bytes the header carries: space padded (PS3.8 9.3.2).
    static func paddedAE(_ title: String) -> [UInt8] {
        var bytes = Array(title.utf8.prefix(16))
        while bytes.count < 16 { bytes.append(0x20) }
        return bytes
    }

    /// Item type, reserved byte, two-byte length, body.
    static func writeItem(_ buffer: inout ByteBuffer, _ type: UInt8, body: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(type)
        buffer.writeInteger(UInt8(0))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt16(0))
        body(&buffer)
        buffer.setInteger(UInt16(buffer.writerIndex - lengthIndex - 2), at: lengthIndex)
    }

    static func writeUserInformation(_ buffer: inout ByteBuffer, _ info: UserInformation) {
        writeItem(&buffer, 0x50) { item in
            writeItem(&item, 0x51) { $0.writeInteger(info.maxPDULength) }
            writeItem(&item, 0x52) { $0.writeString(info.implementationClassUID) }
            if let window = info.asynchronousOperations {
                writeItem(&item, 0x53) { $0.writeInteger(window.invoked); $0.writeInteger(window.performed) }
            }
            for role in info.roleSelections {
                writeItem(&item, 0x54) { sub in
                    sub.writeInteger(UInt16(role.sopClassUID.utf8.count))
                    sub.writeString(role.sopClassUID)
                    sub.writeInteger(UInt8(role.scuRole ? 1 : 0))
                    sub.writeInteger(UInt8(role.scpRole ? 1 : 0))
                }
            }
            if let name = info.implementationVersionName {
                writeItem(&item, 0x55) { $0.writeString(String(name.prefix(16))) }
            }
            if let identity = info.userIdentity {
                writeItem(&item, 0x58) { sub in
                    sub.writeInteger(identity.kind.rawValue)
                    sub.writeInteger(UInt8(identity.positiveResponseRequested ? 1 : 0))
                    sub.writeInteger(UInt16(identity.primaryField.count))
                    sub.writeBytes(identity.primaryField)
                    sub.writeInteger(UInt16(identity.secondaryField.count))
                    sub.writeBytes(identity.secondaryField)
                }
            }
            if let response = info.userIdentityResponse {
                writeItem(&item, 0x59) { sub in
                    sub.writeInteger(UInt16(response.count))
                    sub.writeBytes(response)
                }
            }
        }
    }
}

// MARK: Decoding

extension PDU {
    /// Parses the body of a PDU of `type` (the six-byte header already read). Every length is
    /// checked against what is left, so a lying length is an error, never a read past the end.
    public static func decode(type: UInt8, body: inout ByteBuffer) throws(DIMSEError) -> PDU {
        switch type {
        case 0x01:
            let header = try readAssociateHeader(&body)
            var rq = AssociateRequest(calledAETitle: header.called, callingAETitle: header.calling, presentationContexts: [],
                                      userInformation: UserInformation(maxPDULength: 0, implementationClassUID: ""))
            rq.protocolVersion = header.version
            var sawContext = false, sawUser = false, sawApplication = false
            while body.readableBytes > 0 {
                var (itemType, item) = try readItem(&body)
                switch itemType {
                case 0x10:
                    rq.applicationContext = try uid(&item, "application context")
                    sawApplication = true
                case 0x20:
                    rq.presentationContexts.append(try proposedContext(&item))
                    sawContext = true
                case 0x50:
                    rq.userInformation = try userInformation(&item)
                    sawUser = true
                default:
                    throw DIMSEError(code: "dimse.malformedPDU", message: "A-ASSOCIATE-RQ has an unknown item 0x\(String(itemType, radix: 16))",
                                     abort: .unrecognizedParameter)
                }
            }
            guard sawApplication, sawContext, sawUser else {
                throw .malformed("A-ASSOCIATE-RQ lacks its application context, presentation contexts or user information")
            }
            return .associateRequest(rq)
        case 0x02:
            let header = try readAssociateHeader(&body)
            var ac = AssociateAccept(calledAETitle: header.called, callingAETitle: header.calling, presentationContexts: [],
                                     userInformation: UserInformation(maxPDULength: 0, implementationClassUID: ""))
            while body.readableBytes > 0 {
                var (itemType, item) = try readItem(&body)
                switch itemType {
                case 0x10: ac.applicationContext = try uid(&item, "application context")
                case 0x21:
                    guard let id: UInt8 = item.readInteger(), item.readInteger(as: UInt8.self) != nil, let resultByte: UInt8 = item.readInteger(),
                          item.readInteger(as: UInt8.self) != nil, let result = AcceptedContext.Result(rawValue: resultByte) else {
                        throw .malformed("presentation context answer is truncated or has an unknown result")
                    }
                    var syntax = ""
                    while item.readableBytes > 0 {
                        var (subType, sub) = try readItem(&item)
                        if subType == 0x40 { syntax = try uid(&sub, "transfer syntax") }
                    }
                    ac.presentationContexts.append(AcceptedContext(id: id, result: result, transferSyntax: syntax))
                case 0x50: ac.userInformation = try userInformation(&item)
                default: throw DIMSEError(code: "dimse.malformedPDU", message: "A-ASSOCIATE-AC has an unknown item", abort: .unrecognizedParameter)
                }
            }
            return .associateAccept(ac)
        case 0x03:
            guard body.readableBytes == 4, let bytes = body.readBytes(length: 4), let result = AssociateReject.Result(rawValue: bytes[1]) else {
                throw .malformed("A-ASSOCIATE-RJ must be 4 bytes with result 1 or 2")
            }
            return .associateReject(AssociateReject(result: result, source: bytes[2], reason: bytes[3]))
        case 0x04:
            var values: [PresentationDataValue] = []
            while body.readableBytes > 0 {
                guard let length: UInt32 = body.readInteger(), length >= 2, Int(length) <= body.readableBytes,
                      let contextID: UInt8 = body.readInteger(), let header: UInt8 = body.readInteger(),
                      let fragment = body.readSlice(length: Int(length) - 2) else {
                    throw .malformed("a presentation data value's length runs past its PDU")
                }
                guard contextID % 2 == 1 else { throw .malformed("presentation context id \(contextID) is even") }
                values.append(PresentationDataValue(contextID: contextID, isCommand: header & 1 != 0, isLast: header & 2 != 0, fragment: fragment))
            }
            guard !values.isEmpty else { throw .malformed("P-DATA-TF carries no presentation data value") }
            return .data(values)
        case 0x05, 0x06:
            guard body.readableBytes == 4 else { throw .malformed("A-RELEASE PDUs carry 4 reserved bytes") }
            return type == 0x05 ? .releaseRequest : .releaseReply
        case 0x07:
            guard body.readableBytes == 4, let bytes = body.readBytes(length: 4) else { throw .malformed("A-ABORT must be 4 bytes") }
            return .abort(Abort(source: bytes[2], reason: bytes[3]))
        default:
            throw .unrecognizedPDU(type)
        }
    }

    static func readAssociateHeader(_ body: inout ByteBuffer) throws(DIMSEError) -> (version: UInt16, called: String, calling: String) {
        guard body.readableBytes >= 68, let version: UInt16 = body.readInteger(), body.readInteger(as: UInt16.self) != nil,
              let called = body.readBytes(length: 16), let calling = body.readBytes(length: 16) else {
            throw .malformed("association header is shorter than 68 bytes")
        }
        body.moveReaderIndex(forwardBy: 32)
        return (version, try aeTitle(called, "called"), try aeTitle(calling, "calling"))
    }

    /// AE titles: up to 16 characters of the default repertoire, no backslash or control
    /// characters, leading and trailing spaces not significant (PS3.5 6.2 AE).
    static func aeTitle(_ bytes: [UInt8], _ which: String) throws(DIMSEError) -> String {
        guard bytes.allSatisfy({ $0 == 0 || ($0 >= 0x20 && $0 < 0x7f && $0 != 0x5c) }) else {
            throw .malformed("the \(which) AE title has characters outside the default repertoire")
        }
        let text = String(decoding: bytes.filter { $0 != 0 }, as: UTF8.self).trimmingSpaces()
        guard !text.isEmpty else { throw .malformed("the \(which) AE title is empty") }
        return text
    }

    static func readItem(_ buffer: inout ByteBuffer) throws(DIMSEError) -> (UInt8, ByteBuffer) {
        guard let type: UInt8 = buffer.readInteger(), buffer.readInteger(as: UInt8.self) != nil, let length: UInt16 = buffer.readInteger(),
              let item = buffer.readSlice(length: Int(length)) else {
            throw .malformed("an item's length runs past its PDU")
        }
        return (type, item)
    }

    /// A UID: digits and dots, up to 64 characters, a trailing NUL tolerated.
    static func uid(_ item: inout ByteBuffer, _ what: String) throws(DIMSEError) -> String {
        var bytes = item.readBytes(length: item.readableBytes) ?? []
        while bytes.last == 0 || bytes.last == 0x20 { bytes.removeLast() }
        guard !bytes.isEmpty, bytes.count <= 64, bytes.allSatisfy({ $0 == 0x2e || ($0 >= 0x30 && $0 <= 0x39) }) else {
            throw .malformed("the \(what) is not a UID")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func proposedContext(_ item: inout ByteBuffer) throws(DIMSEError) -> ProposedContext {
        guard let id: UInt8 = item.readInteger(), item.readBytes(length: 3) != nil else { throw .malformed("presentation context item is truncated") }
        guard id % 2 == 1 else { throw .malformed("presentation context id \(id) is even") }
        var abstract: String?
        var syntaxes: [String] = []
        while item.readableBytes > 0 {
            var (subType, sub) = try readItem(&item)
            switch subType {
            case 0x30:
                guard abstract == nil else { throw .malformed("presentation context \(id) names two abstract syntaxes") }
                abstract = try uid(&sub, "abstract syntax")
            case 0x40: syntaxes.append(try uid(&sub, "transfer syntax"))
            default: throw DIMSEError(code: "dimse.malformedPDU", message: "presentation context has an unknown sub-item", abort: .unrecognizedParameter)
            }
        }
        guard let abstract, !syntaxes.isEmpty else { throw .malformed("presentation context \(id) lacks an abstract or transfer syntax") }
        return ProposedContext(id: id, abstractSyntax: abstract, transferSyntaxes: syntaxes)
    }

    static func userInformation(_ item: inout ByteBuffer) throws(DIMSEError) -> UserInformation {
        var info = UserInformation(maxPDULength: 0, implementationClassUID: "")
        var sawMax = false
        while item.readableBytes > 0 {
            var (subType, sub) = try readItem(&item)
            switch subType {
            case 0x51:
                guard sub.readableBytes == 4, let length: UInt32 = sub.readInteger() else { throw .malformed("maximum length item must be 4 bytes") }
                info.maxPDULength = length
                sawMax = true
            case 0x52: info.implementationClassUID = try uid(&sub, "implementation class UID")
            case 0x53:
                guard sub.readableBytes == 4, let invoked: UInt16 = sub.readInteger(), let performed: UInt16 = sub.readInteger() else {
                    throw .malformed("asynchronous operations item must be 4 bytes")
                }
                info.asynchronousOperations = (invoked, performed)
            case 0x54:
                guard let length: UInt16 = sub.readInteger(), var uidBytes = sub.readSlice(length: Int(length)),
                      let scu: UInt8 = sub.readInteger(), let scp: UInt8 = sub.readInteger() else {
                    throw .malformed("role selection item is truncated")
                }
                info.roleSelections.append(RoleSelection(sopClassUID: try uid(&uidBytes, "role selection SOP class"), scuRole: scu == 1, scpRole: scp == 1))
            case 0x55:
                let bytes = sub.readBytes(length: sub.readableBytes) ?? []
                guard bytes.count <= 16 else { throw .malformed("implementation version name is longer than 16 characters") }
                info.implementationVersionName = String(decoding: bytes, as: UTF8.self).trimmingSpaces()
            case 0x58:
                guard let kind: UInt8 = sub.readInteger(), let positive: UInt8 = sub.readInteger(),
                      let primaryLength: UInt16 = sub.readInteger(), let primary = sub.readBytes(length: Int(primaryLength)),
                      let secondaryLength: UInt16 = sub.readInteger(), let secondary = sub.readBytes(length: Int(secondaryLength)) else {
                    throw .malformed("user identity item is truncated")
                }
                guard let identityKind = UserIdentity.Kind(rawValue: kind) else { throw .malformed("user identity type \(kind) is not defined") }
                info.userIdentity = UserIdentity(kind: identityKind, positiveResponseRequested: positive == 1, primaryField: primary, secondaryField: secondary)
            case 0x59:
                guard let length: UInt16 = sub.readInteger(), let response = sub.readBytes(length: Int(length)) else {
                    throw .malformed("user identity response is truncated")
                }
                info.userIdentityResponse = response
            default:
                // Extended negotiation and other optional sub-items (0x56, 0x57, ...) are not
                // used here; PS3.7 D.3.3 lets an acceptor ignore what it does not support.
                break
            }
        }
        guard sawMax else { throw .malformed("user information lacks the maximum length item") }
        guard !info.implementationClassUID.isEmpty else { throw .malformed("user information lacks the implementation class UID") }
        return info
    }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}

/// Frames PDUs off the wire: six-byte header, then the body, refused above `maxLength` before
/// any of it is buffered, so a peer cannot make the grid hold an oversized PDU.
public struct PDUDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PDU
    /// Largest PDU accepted: the negotiated P-DATA limit plus room for the association items.
    public let maxLength: Int

    public init(maxLength: Int) { self.maxLength = maxLength }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard buffer.readableBytes >= 6, let type: UInt8 = buffer.getInteger(at: buffer.readerIndex),
              let length: UInt32 = buffer.getInteger(at: buffer.readerIndex + 2) else { return .needMoreData }
        guard (0x01...0x07).contains(type) else { throw DIMSEError.unrecognizedPDU(type) }
        guard Int(length) <= maxLength else { throw DIMSEError.tooLarge(Int(length), limit: maxLength) }
        guard buffer.readableBytes >= 6 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 6)
        var body = buffer.readSlice(length: Int(length))!
        let pdu = try PDU.decode(type: type, body: &body)
        context.fireChannelRead(wrapInboundOut(pdu))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

public struct PDUEncoder: MessageToByteEncoder {
    public typealias OutboundIn = PDU
    public init() {}
    public func encode(data: PDU, out: inout ByteBuffer) throws {
        data.encode(into: &out)
    }
}
