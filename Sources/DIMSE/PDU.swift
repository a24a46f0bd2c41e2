import NIOCore
import RadGridCore

/// The DICOM upper layer's protocol data units (PS3.8 9.3): what crosses the TCP connection.
public enum PDU: Sendable, Equatable {
    case associateRequest(AssociateRequest)
    case associateAccept(AssociateAccept)
    case associateReject(AssociateReject)
    case data([PresentationDataValue])
    case releaseRequest
    case releaseReply
    case abort(Abort)

    /// PDU type byte (PS3.8 9.3.1).
    public var type: UInt8 {
        switch self {
        case .associateRequest: 0x01
        case .associateAccept: 0x02
        case .associateReject: 0x03
        case .data: 0x04
        case .releaseRequest: 0x05
        case .releaseReply: 0x06
        case .abort: 0x07
        }
    }

    public var name: String {
        switch self {
        case .associateRequest: "A-ASSOCIATE-RQ"
        case .associateAccept: "A-ASSOCIATE-AC"
        case .associateReject: "A-ASSOCIATE-RJ"
        case .data: "P-DATA-TF"
        case .releaseRequest: "A-RELEASE-RQ"
        case .releaseReply: "A-RELEASE-RP"
        case .abort: "A-ABORT"
        }
    }
}

/// The DICOM application context, the only one there is (PS3.7 A.2.1).
public let dicomApplicationContext = "1.2.840.10008.3.1.1.1"

/// A-ASSOCIATE-RQ (PS3.8 9.3.2).
public struct AssociateRequest: Sendable, Equatable {
    public var calledAETitle: String
    public var callingAETitle: String
    public var applicationContext: String = dicomApplicationContext
    public var presentationContexts: [ProposedContext]
    public var userInformation: UserInformation
    /// Protocol version bit field; version 1 is bit 0.
    public var protocolVersion: UInt16 = 1

    public init(calledAETitle: String, callingAETitle: String, presentationContexts: [ProposedContext], userInformation: UserInformation) {
        self.calledAETitle = calledAETitle
        self.callingAETitle = callingAETitle
        self.presentationContexts = presentationContexts
        self.userInformation = userInformation
    }
}

/// One proposed presentation context: an abstract syntax and the transfer syntaxes offered for it.
public struct ProposedContext: Sendable, Equatable {
    public var id: UInt8
    public var abstractSyntax: String
    public var transferSyntaxes: [String]
    public init(id: UInt8, abstractSyntax: String, transferSyntaxes: [String]) {
        self.id = id
        self.abstractSyntax = abstractSyntax
        self.transferSyntaxes = transferSyntaxes
    }
}

/// A-ASSOCIATE-AC (PS3.8 9.3.3).
public struct AssociateAccept: Sendable, Equatable {
    public var calledAETitle: String
    public var callingAETitle: String
    public var applicationContext: String = dicomApplicationContext
    public var presentationContexts: [AcceptedContext]
    public var userInformation: UserInformation
    public init(calledAETitle: String, callingAETitle: String, presentationContexts: [AcceptedContext], userInformation: UserInformation) {
        self.calledAETitle = calledAETitle
        self.callingAETitle = callingAETitle
        self.presentationContexts = presentationContexts
        self.userInformation = userInformation
    }
}

/// The answer to one proposed context (PS3.8 9.3.3.2).
public struct AcceptedContext: Sendable, Equatable {
    public enum Result: UInt8, Sendable {
        case acceptance = 0
        case userRejection = 1
        case noReason = 2
        case abstractSyntaxNotSupported = 3
        case transferSyntaxesNotSupported = 4
    }
    public var id: UInt8
    public var result: Result
    /// The chosen syntax (meaningless unless accepted; still sent, as the standard asks).
    public var transferSyntax: String
    public init(id: UInt8, result: Result, transferSyntax: String) {
        self.id = id
        self.result = result
        self.transferSyntax = transferSyntax
    }
}

/// A-ASSOCIATE-RJ (PS3.8 9.3.4): result, source and reason as the standard numbers them.
public struct AssociateReject: Sendable, Equatable {
    public enum Result: UInt8, Sendable { case permanent = 1, transient = 2 }
    public var result: Result
    /// 1 service user, 2 service provider (ACSE), 3 service provider (presentation).
    public var source: UInt8
    public var reason: UInt8
    public init(result: Result, source: UInt8, reason: UInt8) {
        self.result = result
        self.source = source
        self.reason = reason
    }

    public static let noReasonGiven = AssociateReject(result: .permanent, source: 1, reason: 1)
    public static let applicationContextNotSupported = AssociateReject(result: .permanent, source: 1, reason: 2)
    public static let callingAETitleNotRecognized = AssociateReject(result: .permanent, source: 1, reason: 3)
    public static let calledAETitleNotRecognized = AssociateReject(result: .permanent, source: 1, reason: 7)
    public static let protocolVersionNotSupported = AssociateReject(result: .permanent, source: 2, reason: 2)
    public static let temporaryCongestion = AssociateReject(result: .transient, source: 3, reason: 1)
    public static let localLimitExceeded = AssociateReject(result: .transient, source: 3, reason: 2)
}

/// A-ABORT (PS3.8 9.3.8).
public struct Abort: Sendable, Equatable {
    /// 0 service user, 2 service provider.
    public var source: UInt8
    public var reason: UInt8
    public init(source: UInt8, reason: UInt8) {
        self.source = source
        self.reason = reason
    }
    public static let byUser = Abort(source: 0, reason: 0)
    public static let notSpecified = Abort(source: 2, reason: 0)
    public static let unrecognizedPDU = Abort(source: 2, reason: 1)
    public static let unexpectedPDU = Abort(source: 2, reason: 2)
    public static let unrecognizedParameter = Abort(source: 2, reason: 4)
    public static let unexpectedParameter = Abort(source: 2, reason: 5)
    public static let invalidParameterValue = Abort(source: 2, reason: 6)
}

/// One presentation data value of a P-DATA-TF: a fragment of a command or a data set.
public struct PresentationDataValue: Sendable, Equatable {
    public var contextID: UInt8
    public var isCommand: Bool
    public var isLast: Bool
    public var fragment: ByteBuffer
    public init(contextID: UInt8, isCommand: Bool, isLast: Bool, fragment: ByteBuffer) {
        self.contextID = contextID
        self.isCommand = isCommand
        self.isLast = isLast
        self.fragment = fragment
    }
}

/// The user information item (PS3.8 D.1, PS3.7 D.3.3).
public struct UserInformation: Sendable, Equatable {
    /// Largest P-DATA-TF PDU the sender of this item can receive; 0 means no limit.
    public var maxPDULength: UInt32
    public var implementationClassUID: String
    public var implementationVersionName: String?
    public var roleSelections: [RoleSelection] = []
    /// Asynchronous operations window (invoked, performed); nil when not negotiated.
    public var asynchronousOperations: (invoked: UInt16, performed: UInt16)?
    public var userIdentity: UserIdentity?
    /// The acceptor's answer to a user identity that asked for one (A-ASSOCIATE-AC only).
    public var userIdentityResponse: [UInt8]?

    public init(maxPDULength: UInt32, implementationClassUID: String, implementationVersionName: String? = nil) {
        self.maxPDULength = maxPDULength
        self.implementationClassUID = implementationClassUID
        self.implementationVersionName = implementationVersionName
    }

    public static func == (a: UserInformation, b: UserInformation) -> Bool {
        a.maxPDULength == b.maxPDULength && a.implementationClassUID == b.implementationClassUID
            && a.implementationVersionName == b.implementationVersionName && a.roleSelections == b.roleSelections
            && a.asynchronousOperations?.invoked == b.asynchronousOperations?.invoked
            && a.asynchronousOperations?.performed == b.asynchronousOperations?.performed
            && a.userIdentity == b.userIdentity && a.userIdentityResponse == b.userIdentityResponse
    }
}

/// SCP/SCU role selection for one SOP class (PS3.7 D.3.3.4).
public struct RoleSelection: Sendable, Equatable {
    public var sopClassUID: String
    public var scuRole: Bool
    public var scpRole: Bool
    public init(sopClassUID: String, scuRole: Bool, scpRole: Bool) {
        self.sopClassUID = sopClassUID
        self.scuRole = scuRole
        self.scpRole = scpRole
    }
}

/// User identity negotiation (PS3.7 D.3.3.7).
public struct UserIdentity: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case username = 1
        case usernameAndPasscode = 2
        case kerberos = 3
        case saml = 4
        case jwt = 5
    }
    public var kind: Kind
    public var positiveResponseRequested: Bool
    public var primaryField: [UInt8]
    public var secondaryField: [UInt8]
    public init(kind: Kind, positiveResponseRequested: Bool, primaryField: [UInt8], secondaryField: [UInt8] = []) {
        self.kind = kind
        self.positiveResponseRequested = positiveResponseRequested
        self.primaryField = primaryField
        self.secondaryField = secondaryField
    }
    public var username: String { String(decoding: primaryField, as: UTF8.self) }
    public var passcode: String { String(decoding: secondaryField, as: UTF8.self) }
}
