import NIOCore

/// One whole DIMSE message: its command set and, when the command says one follows, its data set.
public struct Message: Sendable {
    public var contextID: UInt8
    public var command: Command
    public var dataSet: ByteBuffer?
    /// The data set was larger than the receiver's limit and was dropped while it arrived.
    public var dataSetDiscarded = false
}

/// Puts P-DATA fragments back together (PS3.8 9.3.5, PS3.7 E.2): a command's fragments, then its
/// data set's, all on one presentation context. Without asynchronous operations a peer sends one
/// message at a time, so one message is assembled at a time.
public struct MessageAssembler: Sendable {
    /// Larger data sets are dropped as they arrive (the message still completes, flagged).
    public let maxDataSetBytes: Int
    var contextID: UInt8?
    var commandBytes = ByteBuffer()
    var command: Command?
    var dataSet = ByteBuffer()
    var discarding = false

    public init(maxDataSetBytes: Int) { self.maxDataSetBytes = maxDataSetBytes }

    /// Adds one fragment; returns the message it completes, if any.
    public mutating func append(_ value: PresentationDataValue) throws(DIMSEError) -> Message? {
        if let contextID, contextID != value.contextID {
            throw .unexpected("a fragment on presentation context \(value.contextID) arrived inside a message on context \(contextID)")
        }
        contextID = value.contextID
        var fragment = value.fragment
        if value.isCommand {
            guard command == nil else { throw .unexpected("a command fragment arrived after the command was complete") }
            commandBytes.writeBuffer(&fragment)
            guard value.isLast else { return nil }
            let parsed = try Command.decode(commandBytes)
            commandBytes = ByteBuffer()
            guard parsed.hasDataSet else { return finish(parsed, dataSet: nil) }
            command = parsed
            return nil
        }
        guard let command else { throw .unexpected("a data set fragment arrived before its command") }
        if !discarding {
            if dataSet.readableBytes + fragment.readableBytes > maxDataSetBytes {
                discarding = true
                dataSet = ByteBuffer()
            } else if dataSet.readableBytes == 0 && value.isLast {
                // The whole data set in one fragment: keep the slice, no copy.
                dataSet = fragment
            } else {
                dataSet.writeBuffer(&fragment)
            }
        }
        guard value.isLast else { return nil }
        let discarded = discarding
        let message = finish(command, dataSet: discarded ? nil : dataSet)
        return discarded ? Message(contextID: message.contextID, command: message.command, dataSet: nil, dataSetDiscarded: true) : message
    }

    /// True between the first fragment of a message and its last.
    public var isMidMessage: Bool { contextID != nil }

    private mutating func finish(_ command: Command, dataSet: ByteBuffer?) -> Message {
        let message = Message(contextID: contextID ?? 0, command: command, dataSet: dataSet)
        self.contextID = nil
        self.command = nil
        self.dataSet = ByteBuffer()
        self.discarding = false
        return message
    }
}

/// Splits a message into P-DATA-TF PDUs no larger than the peer accepts.
public enum MessageFragmenter {
    /// `maxPDULength` is the peer's limit (0: none); a fragment leaves room for the PDV header.
    public static func pdus(contextID: UInt8, command: Command, dataSet: ByteBuffer?, maxPDULength: UInt32) -> [PDU] {
        let limit = maxPDULength == 0 ? 1 << 20 : max(64, Int(maxPDULength)) - 6
        var pdus: [PDU] = []
        pdus += fragments(contextID: contextID, isCommand: true, command.encoded(), limit: limit)
        if let dataSet { pdus += fragments(contextID: contextID, isCommand: false, dataSet, limit: limit) }
        return pdus
    }

    static func fragments(contextID: UInt8, isCommand: Bool, _ bytes: ByteBuffer, limit: Int) -> [PDU] {
        var bytes = bytes
        var pdus: [PDU] = []
        repeat {
            let length = min(limit, bytes.readableBytes)
            let slice = bytes.readSlice(length: length)!
            pdus.append(.data([PresentationDataValue(contextID: contextID, isCommand: isCommand, isLast: bytes.readableBytes == 0, fragment: slice)]))
        } while bytes.readableBytes > 0
        return pdus
    }
}
