import NIOCore

/// A DIMSE command set (PS3.7 E.1): group 0000 elements in Implicit VR Little Endian, whatever
/// the presentation context's transfer syntax. Kept as raw values by element number, with typed
/// accessors for the fields the grid uses.
public struct Command: Sendable, Equatable {
    /// PS3.7 E.1 command field values.
    public enum Field: UInt16, Sendable {
        case cStoreRequest = 0x0001, cStoreResponse = 0x8001
        case cGetRequest = 0x0010, cGetResponse = 0x8010
        case cFindRequest = 0x0020, cFindResponse = 0x8020
        case cMoveRequest = 0x0021, cMoveResponse = 0x8021
        case cEchoRequest = 0x0030, cEchoResponse = 0x8030
        case nEventReportRequest = 0x0100, nEventReportResponse = 0x8100
        case nGetRequest = 0x0110, nGetResponse = 0x8110
        case nSetRequest = 0x0120, nSetResponse = 0x8120
        case nActionRequest = 0x0130, nActionResponse = 0x8130
        case nCreateRequest = 0x0140, nCreateResponse = 0x8140
        case nDeleteRequest = 0x0150, nDeleteResponse = 0x8150
        case cCancelRequest = 0x0FFF
    }

    /// Element numbers of group 0000 (PS3.7 E.1).
    public enum Element: UInt16, Sendable {
        case groupLength = 0x0000
        case affectedSOPClassUID = 0x0002
        case commandField = 0x0100
        case messageID = 0x0110
        case messageIDBeingRespondedTo = 0x0120
        case moveDestination = 0x0600
        case priority = 0x0700
        case commandDataSetType = 0x0800
        case status = 0x0900
        case offendingElement = 0x0901
        case errorComment = 0x0902
        case errorID = 0x0903
        case affectedSOPInstanceUID = 0x1000
        case moveOriginatorAETitle = 0x1030
        case moveOriginatorMessageID = 0x1031
    }

    /// Command Data Set Type value meaning "no data set follows".
    public static let noDataSet: UInt16 = 0x0101

    public private(set) var elements: [UInt16: [UInt8]] = [:]

    public init() {}

    public subscript(raw element: UInt16) -> [UInt8]? { elements[element] }

    public mutating func set(_ element: Element, uint16 value: UInt16) {
        elements[element.rawValue] = [UInt8(value & 0xff), UInt8(value >> 8)]
    }

    /// UI and AE/LO values, padded to even length (NUL for UIDs, space otherwise).
    public mutating func set(_ element: Element, string value: String) {
        var bytes = Array(value.utf8)
        if bytes.count % 2 == 1 { bytes.append(element == .affectedSOPClassUID || element == .affectedSOPInstanceUID ? 0 : 0x20) }
        elements[element.rawValue] = bytes
    }

    public func uint16(_ element: Element) -> UInt16? {
        guard let bytes = elements[element.rawValue], bytes.count == 2 else { return nil }
        return UInt16(bytes[0]) | UInt16(bytes[1]) << 8
    }

    public func string(_ element: Element) -> String? {
        guard var bytes = elements[element.rawValue] else { return nil }
        while bytes.last == 0 || bytes.last == 0x20 { bytes.removeLast() }
        while bytes.first == 0x20 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var field: Field? { uint16(.commandField).flatMap(Field.init(rawValue:)) }
    public var messageID: UInt16? { uint16(.messageID) }
    public var hasDataSet: Bool { (uint16(.commandDataSetType) ?? Self.noDataSet) != Self.noDataSet }
    public var status: UInt16? { uint16(.status) }

    /// Implicit VR LE: tag, 4-byte length, value; group length first, elements in order.
    public func encoded() -> ByteBuffer {
        var body = ByteBuffer()
        for (element, value) in elements.sorted(by: { $0.key < $1.key }) where element != 0 {
            body.writeInteger(UInt16(0), endianness: .little)
            body.writeInteger(element, endianness: .little)
            body.writeInteger(UInt32(value.count), endianness: .little)
            body.writeBytes(value)
        }
        var out = ByteBuffer()
        out.writeInteger(UInt16(0), endianness: .little)
        out.writeInteger(UInt16(0), endianness: .little)
        out.writeInteger(UInt32(4), endianness: .little)
        out.writeInteger(UInt32(body.readableBytes), endianness: .little)
        out.writeBuffer(&body)
        return out
    }

    /// Parses a whole command set; anything outside group 0000 or running past the end is refused.
    public static func decode(_ buffer: ByteBuffer) throws(DIMSEError) -> Command {
        var buffer = buffer
        var command = Command()
        while buffer.readableBytes > 0 {
            guard let group: UInt16 = buffer.readInteger(endianness: .little), let element: UInt16 = buffer.readInteger(endianness: .little),
                  let length: UInt32 = buffer.readInteger(endianness: .little), length <= buffer.readableBytes,
                  let value = buffer.readBytes(length: Int(length)) else {
                throw .malformed("a command element's length runs past the command set")
            }
            guard group == 0 else { throw .malformed("a command set holds an element outside group 0000") }
            command.elements[element] = value
        }
        guard command.uint16(.commandField) != nil else { throw .malformed("a command set lacks its command field") }
        return command
    }

    // MARK: Builders

    public static func echoRequest(messageID: UInt16) -> Command {
        var command = Command()
        command.set(.affectedSOPClassUID, string: verificationSOPClass)
        command.set(.commandField, uint16: Field.cEchoRequest.rawValue)
        command.set(.messageID, uint16: messageID)
        command.set(.commandDataSetType, uint16: noDataSet)
        return command
    }

    public static func storeRequest(messageID: UInt16, sopClass: String, sopInstance: String, priority: UInt16 = 0) -> Command {
        var command = Command()
        command.set(.affectedSOPClassUID, string: sopClass)
        command.set(.commandField, uint16: Field.cStoreRequest.rawValue)
        command.set(.messageID, uint16: messageID)
        command.set(.priority, uint16: priority)
        command.set(.commandDataSetType, uint16: 0x0000)
        command.set(.affectedSOPInstanceUID, string: sopInstance)
        return command
    }

    /// The response to `request` (same SOP class and instance, field | 0x8000).
    public static func response(to request: Command, status: UInt16, errorComment: String? = nil) -> Command {
        var command = Command()
        if let sopClass = request.string(.affectedSOPClassUID) { command.set(.affectedSOPClassUID, string: sopClass) }
        command.set(.commandField, uint16: (request.uint16(.commandField) ?? 0) | 0x8000)
        command.set(.messageIDBeingRespondedTo, uint16: request.messageID ?? 0)
        command.set(.commandDataSetType, uint16: noDataSet)
        command.set(.status, uint16: status)
        if let sop = request.string(.affectedSOPInstanceUID) { command.set(.affectedSOPInstanceUID, string: sop) }
        if let errorComment { command.set(.errorComment, string: String(errorComment.prefix(64))) }
        return command
    }
}

/// DIMSE status codes the grid sends and reads (PS3.4 B.2.3, PS3.7 C).
public enum DIMSEStatus {
    public static let success: UInt16 = 0x0000
    /// Warning: coercion of data elements.
    public static let coercionOfDataElements: UInt16 = 0xB000
    /// Warning: elements discarded.
    public static let elementsDiscarded: UInt16 = 0xB006
    /// Warning: data set does not match SOP class (stored anyway).
    public static let dataSetDoesNotMatchSOPClassWarning: UInt16 = 0xB007
    public static let outOfResources: UInt16 = 0xA700
    public static let dataSetDoesNotMatchSOPClass: UInt16 = 0xA900
    public static let cannotUnderstand: UInt16 = 0xC000
    public static let refusedNotAuthorized: UInt16 = 0x0124
    public static let processingFailure: UInt16 = 0x0110
    public static let unrecognizedOperation: UInt16 = 0x0211
    public static let sopClassNotSupported: UInt16 = 0x0122

    public static func isSuccess(_ status: UInt16) -> Bool { status == success || (status & 0xF000) == 0xB000 }
}

/// Verification SOP Class (C-ECHO).
public let verificationSOPClass = "1.2.840.10008.1.1"
