import DIMSE
import DIMSEGateway
import Foundation
import Gateway
import GridContract
import Logging
import NIOCore
import RadGridCore
import RedisClient
import Screening
import ServiceLifecycle
import StudyLifecycle
import StudyStore
import Testing
import TestSupport
import Zstd
#if canImport(Glibc)
import Glibc
#endif

/// The C-STORE SCP in-process with the grid's real intake and a real Redis, driven by dcmtk's
/// echoscu/storescu and by raw bytes on a socket for what no well-behaved peer sends.
@Suite(.serialized) struct DIMSEProtocolTests {
    /// A running SCP with its Redis, site H001 registered as AE H001 from 127.0.0.1.
    final class Harness: Sendable {
        let client: RedisClient
        let prefix: KeyPrefix
        let store: StudyStore
        let port: Int
        let token: String
        let task: Task<Void, any Error>

        init(artim: TimeAmount = .seconds(30), maxPerSite: Int = 8, maxPDU: UInt32 = 1 << 20) async throws {
            let prefix = KeyPrefix(TestRedis.uniquePrefix("dimse"))
            let client = try RedisClient(url: try await TestRedis.url())
            let store = StudyStore(client: client, prefix: prefix)
            let network = SiteNetwork(client: client, prefix: prefix)
            try await network.register(aeTitle: "H001", .init(site: "H001", addresses: ["127.0.0.1"]))
            try await network.register(aeTitle: "H002IDENT", .init(site: "H002", addresses: ["127.0.0.0/8"], requireIdentity: true))
            try await network.register(aeTitle: "H003", .init(site: "H003", addresses: ["10.9.9.9"]))
            let tokens = SiteTokens(client: client, prefix: prefix)
            let token = try await tokens.issue(site: "H002")
            var limits = DIMSEIntake.Limits()
            limits.maxAssociationsPerSite = maxPerSite
            let logger = Logger(label: "test.dimse")
            let delegate = DIMSEIntake(network: network, tokens: tokens, intake: InstanceIntake(store: store, logger: logger),
                                       backpressure: Backpressure(client: client, store: store), store: store,
                                       machine: StudyStateMachine(settings: LifecycleSettings()), limits: limits, logger: logger)
            var configuration = StorageSCP.Configuration()
            configuration.port = 0
            configuration.artim = artim
            configuration.maxPDULength = maxPDU
            configuration.transferSyntaxes = DIMSEIntake.acceptedTransferSyntaxes
            let (stream, continuation) = AsyncStream<Int>.makeStream()
            let scp = StorageSCP(configuration: configuration, delegate: delegate, logger: logger) { continuation.yield($0) }
            self.task = Task { try await scp.run() }
            var iterator = stream.makeAsyncIterator()
            self.port = try #require(await iterator.next())
            self.client = client
            self.prefix = prefix
            self.store = store
            self.token = token
        }

        deinit {
            task.cancel()
            client.shutdown()
        }

        func studies() async throws -> [StudyRecord] {
            var records: [StudyRecord] = []
            for uid in try await store.allStudies() { if let record = try await store.record(uid) { records.append(record) } }
            return records
        }

        /// The studies once `count` of them are committed (or after `timeout`): the commit on
        /// release follows the A-RELEASE-RP, so the sender may exit before it lands.
        func studiesOnceCommitted(_ count: Int, timeout: Duration = .seconds(15)) async throws -> [StudyRecord] {
            let deadline = ContinuousClock.now + timeout
            while true {
                let records = try await studies()
                if records.filter(\.committed).count >= count || ContinuousClock.now >= deadline { return records }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// A small head CT phantom (`slices` files) in a fresh folder, one study per seed.
    static func phantomFolder(seed: UInt64, slices: Int = 3) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dimse-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var spec = PhantomSpec.small(.head, seed: seed)
        spec.slices = slices
        for (k, bytes) in try Phantom.generate(spec).dicomFiles().enumerated() {
            try Data(bytes).write(to: folder.appendingPathComponent("\(k).dcm"))
        }
        return folder
    }

    static func files(in folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().map { folder.appendingPathComponent($0).path }
    }

    // MARK: Real peers

    @Test func echoscuIsAnsweredAndAnUnknownCallerIsRejected() async throws {
        let scp = try await Harness()
        let ok = try await DcmtkTool.run("echoscu", ["-aet", "H001", "-aec", "RADGRID", "127.0.0.1", String(scp.port)])
        #expect(ok.status == 0, "\(ok.output)")
        let unknown = try await DcmtkTool.run("echoscu", ["-aet", "NOBODY", "-aec", "RADGRID", "127.0.0.1", String(scp.port)])
        #expect(unknown.status != 0)
        #expect(unknown.output.contains("Calling AE Title Not Recognized"), "\(unknown.output)")
        // Registered, but not from this address.
        let elsewhere = try await DcmtkTool.run("echoscu", ["-aet", "H003", "-aec", "RADGRID", "127.0.0.1", String(scp.port)])
        #expect(elsewhere.output.contains("Calling AE Title Not Recognized"), "\(elsewhere.output)")
        let wrongCalled = try await DcmtkTool.run("echoscu", ["-aet", "H001", "-aec", "SOMEONE", "127.0.0.1", String(scp.port)])
        #expect(wrongCalled.output.contains("Called AE Title Not Recognized"), "\(wrongCalled.output)")
    }

    @Test func storescuSendsAFolderAndCompressedSyntaxesAndReleaseCommits() async throws {
        let scp = try await Harness()
        // A folder (+sd) with storescu's default (uncompressed) proposals.
        let folder = try Self.phantomFolder(seed: 71, slices: 4)
        defer { try? FileManager.default.removeItem(at: folder) }
        let folderRun = try await DcmtkTool.run("storescu", ["-aet", "H001", "-aec", "RADGRID", "+sd", "127.0.0.1", String(scp.port), folder.path])
        #expect(folderRun.status == 0, "\(folderRun.output)")
        // Compressed syntaxes: each study encoded by dcmtk, proposed the way storescu does it, kept as sent.
        for (seed, encoder, option, syntax) in [(72, ["dcmcjpeg"], "-xs", "1.2.840.10008.1.2.4.70"), (73, ["dcmcjpls"], "-xt", "1.2.840.10008.1.2.4.80"),
                                                (74, ["dcmcrle"], "-xr", "1.2.840.10008.1.2.5"), (75, ["dcmconv", "+td"], "-xd", "1.2.840.10008.1.2.1.99")] {
            let source = try Self.phantomFolder(seed: UInt64(seed), slices: 2)
            defer { try? FileManager.default.removeItem(at: source) }
            for path in try Self.files(in: source) {
                let encoded = try await DcmtkTool.run(encoder[0], Array(encoder.dropFirst()) + [path, path + ".enc"])
                #expect(encoded.status == 0, "\(encoder): \(encoded.output)")
                try FileManager.default.removeItem(atPath: path)
            }
            let run = try await DcmtkTool.run("storescu", [option, "-aet", "H001", "-aec", "RADGRID", "+sd", "127.0.0.1", String(scp.port), source.path])
            #expect(run.status == 0, "\(syntax): \(run.output)")
            let sent = try Part10.meta(of: Array(try Data(contentsOf: URL(fileURLWithPath: try Self.files(in: source)[0]))))
            #expect(sent.transferSyntaxUID == syntax)
            let study = try #require(try await studyOf(sent.sopInstanceUID, scp))
            let stored = try #require(try await scp.store.compressedInstance(study: study, sop: try SOPInstanceUID(sent.sopInstanceUID)))
            #expect(try Part10.meta(of: try Zstd.decompress(stored)).transferSyntaxUID == syntax)
        }
        let records = try await scp.studiesOnceCommitted(5)
        #expect(records.count == 5)
        #expect(records.map(\.instances).sorted() == [2, 2, 2, 2, 4])
        // Every association was released: every study is committed, by the release.
        let uncommitted = records.filter { !$0.committed }.map(\.uid.rawValue)
        #expect(uncommitted.isEmpty, "not committed: \(uncommitted)")
        let entries = try await scp.store.audit(records[0].uid).entries()
        #expect(entries.contains { $0.details.contains("association-release") }, "\(entries.map(\.details))")
    }

    func studyOf(_ sop: String, _ scp: Harness) async throws -> StudyUID? {
        for uid in try await scp.store.allStudies() where try await scp.store.instanceUIDs(uid).contains(where: { $0.rawValue == sop }) { return uid }
        return nil
    }

    @Test func concurrentAssociationsAllStoreAndThePerSiteBoundRejectsTheRest() async throws {
        let scp = try await Harness(maxPerSite: 4)
        var folders: [URL] = []
        for seed in 80..<84 { folders.append(try Self.phantomFolder(seed: UInt64(seed), slices: 3)) }
        defer { for folder in folders { try? FileManager.default.removeItem(at: folder) } }
        let results = try await withThrowingTaskGroup(of: (Int32, String).self) { group in
            for file in folders.map(\.path) {
                group.addTask {
                    let run = try await DcmtkTool.run("storescu", ["-aet", "H001", "-aec", "RADGRID", "+sd", "127.0.0.1", String(scp.port), file])
                    return (run.status, run.output)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.0 == 0 }, "\(results.map(\.1))")
        let stored = try await scp.studiesOnceCommitted(4)
        #expect(stored.count == 4 && stored.allSatisfy { $0.instances == 3 && $0.committed })
        // Hold four associations open (raw sockets, associated), then a fifth is refused, transiently.
        var held: [RawPeer] = []
        for _ in 0..<4 {
            let peer = try RawPeer(port: scp.port)
            try peer.send(Self.associateRequest(calling: "H001"))
            #expect(try peer.receivePDU().type == 0x02)
            held.append(peer)
        }
        let fifth = try await DcmtkTool.run("echoscu", ["-aet", "H001", "-aec", "RADGRID", "127.0.0.1", String(scp.port)])
        #expect(fifth.status != 0)
        #expect(fifth.output.contains("Rejected Transient"), "\(fifth.output)")
        for peer in held { peer.close() }
        // Closed connections free their places.
        try await Task.sleep(for: .milliseconds(300))
        let after = try await DcmtkTool.run("echoscu", ["-aet", "H001", "-aec", "RADGRID", "127.0.0.1", String(scp.port)])
        #expect(after.status == 0, "\(after.output)")
    }

    @Test func userIdentityIsCheckedAgainstTheSiteTokens() async throws {
        let scp = try await Harness()
        let folder = try Self.phantomFolder(seed: 90, slices: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try Self.files(in: folder)[0]
        let good = try await DcmtkTool.run("storescu", ["-aet", "H002IDENT", "-aec", "RADGRID", "--user", "H002", "--password", scp.token, "--pos-response",
                                                        "127.0.0.1", String(scp.port), file])
        #expect(good.status == 0, "\(good.output)")
        let wrong = try await DcmtkTool.run("storescu", ["-aet", "H002IDENT", "-aec", "RADGRID", "--user", "H002", "--password", "rgt_wrong",
                                                         "127.0.0.1", String(scp.port), file])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("Association Rejected"), "\(wrong.output)")
        let none = try await DcmtkTool.run("storescu", ["-aet", "H002IDENT", "-aec", "RADGRID", "127.0.0.1", String(scp.port), file])
        #expect(none.status != 0)
        #expect(none.output.contains("Association Rejected"), "\(none.output)")
    }

    // MARK: Statuses from the SCU side

    @Test func aDataSetNamingAnotherInstanceIsRefusedA900AndNothingIsStored() async throws {
        let scp = try await Harness()
        let folder = try Self.phantomFolder(seed: 91, slices: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: try Self.files(in: folder)[0])))
        let meta = try Part10.meta(of: original)
        var dataSet = ByteBuffer()
        dataSet.writeBytes(original[meta.dataSetOffset...])
        // Same data set, announced as another SOP instance.
        let lying = Part10.file(dataSet: dataSet, sopClassUID: meta.sopClassUID, sopInstanceUID: "1.2.3.4.5.6.7.8.9", transferSyntaxUID: meta.transferSyntaxUID,
                                sourceAETitle: "H001", implementationClassUID: "1.2.3.4", implementationVersionName: "TEST")
        var configuration = StorageSCU.Configuration()
        configuration.callingAETitle = "H001"
        let peer = StorageSCU.Peer(aeTitle: "RADGRID", host: "127.0.0.1", port: scp.port)
        let statuses = try await StorageSCU(configuration: configuration).store([lying, original, Array(original.prefix(900))], to: peer)
        #expect(statuses[0] == DIMSEStatus.dataSetDoesNotMatchSOPClass)
        #expect(statuses[1] == DIMSEStatus.success)
        #expect(statuses[2] == DIMSEStatus.cannotUnderstand, "a truncated data set cannot be understood")
        let records = try await scp.studies()
        #expect(records.count == 1)
        #expect(records.first?.instances == 1)
        #expect(try await StorageSCU(configuration: configuration).echo(peer) == DIMSEStatus.success)
    }

    // MARK: Malformed and unexpected PDUs

    @Test func malformedPDUsAreAbortedWithTheRightReason() async throws {
        let scp = try await Harness(maxPDU: 16_384)
        // An undefined PDU type: A-ABORT, unrecognized PDU (1).
        var peer = try RawPeer(port: scp.port)
        try peer.send([0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0])
        #expect(try peer.receivePDU() == RawPDU(type: 0x07, body: [0, 0, 2, 1]))
        #expect(peer.closedByPeer())
        // P-DATA before any association: unexpected PDU (2).
        peer = try RawPeer(port: scp.port)
        try peer.send([0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 1, 3, 0, 0])
        #expect(try peer.receivePDU() == RawPDU(type: 0x07, body: [0, 0, 2, 2]))
        // An A-ASSOCIATE-RQ whose item length runs past the PDU: invalid parameter value (6).
        peer = try RawPeer(port: scp.port)
        var rq = Self.associateRequest(calling: "H001")
        rq[6 + 68 + 2] = 0xff  // application context item length, high byte
        try peer.send(rq)
        #expect(try peer.receivePDU() == RawPDU(type: 0x07, body: [0, 0, 2, 6]))
        // A PDU longer than the negotiated limit is refused before it is read.
        peer = try RawPeer(port: scp.port)
        try peer.send(Self.associateRequest(calling: "H001"))
        #expect(try peer.receivePDU().type == 0x02)
        try peer.send([0x04, 0, 0x7f, 0xff, 0xff, 0xff])
        #expect(try peer.receivePDU() == RawPDU(type: 0x07, body: [0, 0, 2, 6]))
        // Fragments on a context that was never accepted: aborted, nothing stored.
        peer = try RawPeer(port: scp.port)
        try peer.send(Self.associateRequest(calling: "H001"))
        #expect(try peer.receivePDU().type == 0x02)
        try peer.send([0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 99, 3, 0, 0])
        #expect(try peer.receivePDU().type == 0x07)
        // A-RELEASE-RQ in the middle of a message: unexpected.
        peer = try RawPeer(port: scp.port)
        try peer.send(Self.associateRequest(calling: "H001"))
        #expect(try peer.receivePDU().type == 0x02)
        try peer.send([0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 1, 1, 0, 0])  // a command fragment, not the last
        try peer.send([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0])
        #expect(try peer.receivePDU() == RawPDU(type: 0x07, body: [0, 0, 2, 2]))
        // A well-formed association still works afterwards, and released cleanly.
        peer = try RawPeer(port: scp.port)
        try peer.send(Self.associateRequest(calling: "H001"))
        #expect(try peer.receivePDU().type == 0x02)
        try peer.send([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0])
        #expect(try peer.receivePDU() == RawPDU(type: 0x06, body: [0, 0, 0, 0]))
        #expect(try await scp.studies().isEmpty)
    }

    @Test func aSilentPeerIsAbortedByTheARTIMTimer() async throws {
        let scp = try await Harness(artim: .milliseconds(500))
        let peer = try RawPeer(port: scp.port)
        let started = ContinuousClock.now
        #expect(try peer.receivePDU() == RawPDU(type: 0x07, body: [0, 0, 2, 0]))
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(peer.closedByPeer())
        // Half a PDU, then silence: aborted too, not held forever.
        let half = try RawPeer(port: scp.port)
        try half.send(Array(Self.associateRequest(calling: "H001").prefix(20)))
        #expect(try half.receivePDU().type == 0x07)
    }

    // MARK: Raw bytes

    /// An A-ASSOCIATE-RQ proposing Verification and CT storage.
    static func associateRequest(calling: String) -> [UInt8] {
        let rq = AssociateRequest(calledAETitle: "RADGRID", callingAETitle: calling,
                                  presentationContexts: [ProposedContext(id: 1, abstractSyntax: verificationSOPClass, transferSyntaxes: ["1.2.840.10008.1.2"]),
                                                         ProposedContext(id: 3, abstractSyntax: "1.2.840.10008.5.1.4.1.1.2", transferSyntaxes: ["1.2.840.10008.1.2.1"])],
                                  userInformation: UserInformation(maxPDULength: 16_384, implementationClassUID: "1.2.3.4", implementationVersionName: "RAW"))
        var buffer = ByteBuffer()
        PDU.associateRequest(rq).encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }
}

struct RawPDU: Equatable {
    var type: UInt8
    var body: [UInt8]
}

/// A blocking TCP client for bytes no DICOM library would send.
final class RawPeer {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard result == 0 else { throw RadGridError(code: "test.connect", message: "connect failed") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw RadGridError(code: "test.send", message: "send failed") }
    }

    func read(_ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            var chunk = [UInt8](repeating: 0, count: count - out.count)
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { throw RadGridError(code: "test.recv", message: "connection closed or timed out after \(out.count) bytes") }
            out += chunk.prefix(got)
        }
        return out
    }

    func receivePDU() throws -> RawPDU {
        let header = try read(6)
        let length = Int(header[2]) << 24 | Int(header[3]) << 16 | Int(header[4]) << 8 | Int(header[5])
        return RawPDU(type: header[0], body: try read(length))
    }

    /// True when the peer closed its side (a read returns end of stream).
    func closedByPeer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}
