import DICOM
import DICOMWeb
import Foundation
import GridContract
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Gateway
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import StudyStore
import TestSupport
import Testing
import Zstd

/// The gateway over real HTTP on a free port, against a real Redis.
@Suite("Gateway: DICOMweb STOW-RS over HTTP")
struct GatewayHTTPTests {
    /// Runs a gateway for the duration of `body`.
    func withGateway(configure: (inout GatewayConfiguration) -> Void = { _ in }, _ body: (GatewayFixture) async throws -> Void) async throws {
        let client = try RedisClient(url: try await TestRedis.url())
        defer { client.shutdown() }
        let prefix = KeyPrefix(TestRedis.uniquePrefix())
        var configuration = GatewayConfiguration()
        configuration.port = 0
        configure(&configuration)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try GatewayApplication.make(client: client, prefix: prefix, configuration: configuration, logger: Logger(label: "test.gateway")) { port in
            portContinuation.yield(port)
        }
        let group = ServiceGroup(services: [app], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = portStream.makeAsyncIterator()
            guard let port = await iterator.next() else { throw TestSupportError("gateway did not start") }
            let tokens = SiteTokens(client: client, prefix: prefix)
            let fixture = GatewayFixture(
                baseURL: "http://127.0.0.1:\(port)", client: client, store: StudyStore(client: client, prefix: prefix),
                tokenH1: try await tokens.issue(site: "H1"), tokenH2: try await tokens.issue(site: "H2")
            )
            do {
                try await body(fixture)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func storesAStudyAndResendingIsANoOp() async throws {
        try await withGateway { gateway in
            let instances = [try makeInstance(study: "1.2.826.1", sop: "1.2.826.1.1.1"), try makeInstance(study: "1.2.826.1", sop: "1.2.826.1.1.2")]
            let first = try await gateway.stow(path: "/studies/1.2.826.1", token: gateway.tokenH1, parts: instances)
            #expect(first.status == 200)
            #expect(first.json?["00081199"] != nil)
            // With --port 0 the RetrieveURL names the port the gateway bound, not 0.
            let retrieve = ((first.json?["00081190"] as? [String: Any])?["Value"] as? [String])?.first
            #expect(retrieve == gateway.baseURL + "/studies/1.2.826.1", "\(retrieve ?? "none")")
            #expect(first.json?["00081198"] == nil)
            let again = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: instances)
            #expect(again.status == 200)
            let study = try #require(try await gateway.store.record(try StudyUID("1.2.826.1")))
            #expect(study.instances == 2)
            #expect(study.site.rawValue == "H1")
            let commit = try await gateway.post(path: "/studies/1.2.826.1/commit", token: gateway.tokenH1)
            #expect(commit.status == 200)
            #expect(commit.json?["outcome"] as? String == "committed")
            let status = try await gateway.get(path: "/studies/1.2.826.1", token: gateway.tokenH1)
            #expect(status.json?["committed"] as? Bool == true)
        }
    }

    /// The edge compresses its uploads with zstd; a body that would inflate past the request
    /// limit, an unknown encoding and a corrupt frame are refused with nothing stored.
    @Test func zstdEncodedBodiesAreAcceptedWithinTheLimit() async throws {
        try await withGateway(configure: { $0.maxRequestBytes = 256 << 10 }) { gateway in
            let parts = [try makeInstance(study: "1.2.826.9", sop: "1.2.826.9.1.1", size: 64), try makeInstance(study: "1.2.826.9", sop: "1.2.826.9.1.2", size: 64)]
            var writer = MultipartWriter(boundary: "rgz")
            for part in parts { writer.append(part, contentType: "application/dicom") }
            let plain = writer.finish()
            let packed = try Zstd.compress(plain)
            let stored = try await gateway.raw(path: "/studies", token: gateway.tokenH1, contentType: writer.contentType, body: packed, encoding: "zstd")
            #expect(stored.status == 200, "\(String(decoding: stored.body, as: UTF8.self))")
            #expect(try await gateway.store.record(try StudyUID("1.2.826.9"))?.instances == 2)
            let bomb = try Zstd.compress([UInt8](repeating: 0x2D, count: 1 << 20))
            let inflated = try await gateway.raw(path: "/studies", token: gateway.tokenH1, contentType: writer.contentType, body: bomb, encoding: "zstd")
            #expect(inflated.status == 400 && inflated.errorCode == "gateway.badEncoding")
            let gzip = try await gateway.raw(path: "/studies", token: gateway.tokenH1, contentType: writer.contentType, body: plain, encoding: "gzip")
            #expect(gzip.status == 415)
            let corrupt = try await gateway.raw(path: "/studies", token: gateway.tokenH1, contentType: writer.contentType, body: Array(packed.prefix(packed.count / 2)), encoding: "zstd")
            #expect(corrupt.status == 400)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.9"))?.instances == 2)
        }
    }

    /// Uploads in progress are bounded: while one site's upload is still arriving (a raw
    /// socket sends the start of a chunked body and waits), another is answered 429 with
    /// Retry-After; once it has finished, uploads go through again. A part above the instance
    /// limit is dropped as it streams and answered A700, the rest of the request stored.
    @Test func concurrentUploadsAreBoundedAndOversizedPartsRefusedAlone() async throws {
        try await withGateway(configure: { $0.maxConcurrentUploads = 1; $0.intake.maxInstanceBytes = 16 << 10 }) { gateway in
            let port = Int(gateway.baseURL.split(separator: ":").last!)!
            let slow = try RawHTTP.connect(port: port)
            defer { slow.close() }
            try slow.send(Array(("POST /studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(gateway.tokenH1)\r\n"
                                 + "Content-Type: multipart/related; type=\"application/dicom\"; boundary=rgb\r\nTransfer-Encoding: chunked\r\n\r\n").utf8))
            try slow.sendChunk(Array("--rgb\r\n".utf8))
            // The slow upload holds the one slot once its site is marked uploading.
            let uploading = GridKeys(prefix: gateway.store.prefix).siteUploads(try SiteID("H1"))
            for _ in 0..<100 where (try await gateway.client.send("GET", RedisArgument(uploading)).string).flatMap(Int.init) ?? 0 == 0 {
                try await Task.sleep(for: .milliseconds(50))
            }
            let busy = try await gateway.stow(path: "/studies", token: gateway.tokenH2, parts: [try makeInstance(study: "1.2.826.8", sop: "1.2.826.8.1.1")])
            #expect(busy.status == 429 && busy.headers["Retry-After"] != nil, "\(busy.status)")
            // The slow upload ends: stored, and its slot is free again.
            try slow.sendChunk(Array("Content-Type: application/dicom\r\n\r\n".utf8) + (try makeInstance(study: "1.2.826.5", sop: "1.2.826.5.1.1")) + Array("\r\n--rgb--\r\n".utf8))
            try slow.sendChunk([])
            let answer = slow.receiveResponse(timeout: .seconds(30))
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
            let after = try await gateway.stow(path: "/studies", token: gateway.tokenH2,
                                               parts: [try makeInstance(study: "1.2.826.8", sop: "1.2.826.8.1.1"), try makeInstance(study: "1.2.826.8", sop: "1.2.826.8.1.2", size: 128)])
            #expect(after.status == 202)
            let failed = (after.json?["00081198"] as? [String: Any])?["Value"] as? [[String: Any]]
            #expect(((failed?.first?["00081197"] as? [String: Any])?["Value"] as? [Int])?.first == 0xA700)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.8"))?.instances == 1)
        }
    }

    /// A site's policy: priorities it may not request are refused (403, never lowered
    /// silently), uploads past its rate are answered 429 with the seconds to the next minute;
    /// the `*` policy covers sites without their own.
    @Test func sitePoliciesLimitPrioritiesAndUploadRates() async throws {
        try await withGateway { gateway in
            let policies = SitePolicies(client: gateway.client, prefix: gateway.store.prefix)
            try await policies.set(SitePolicy(priorities: [.routine, .bulk], uploadsPerMinute: 2), site: "H1")
            try await policies.set(SitePolicy(priorities: [.urgent, .routine, .bulk], uploadsPerMinute: 0), site: "*")
            let instance = { (n: Int) in try makeInstance(study: "1.2.826.7", sop: "1.2.826.7.1.\(n)") }
            let stat = try await gateway.stow(path: "/studies?priority=stat", token: gateway.tokenH1, parts: [try instance(1)])
            #expect(stat.status == 403 && stat.errorCode == "gateway.priorityNotAllowed")
            // The minute may turn between the two uploads: allow one retry of the pair.
            var third: GatewayFixture.Reply?
            for n in 0..<2 {
                _ = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance(2 + n)])
                _ = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance(2 + n)])
                third = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance(2 + n)])
                if third?.status == 429 { break }
            }
            #expect(third?.status == 429 && third?.errorCode == "gateway.rateLimited")
            #expect((third?.headers["Retry-After"]).flatMap(Int.init).map { (1...60).contains($0) } == true)
            // H2 has no policy of its own: the * policy.
            #expect(try await gateway.stow(path: "/studies?priority=stat", token: gateway.tokenH2, parts: [try makeInstance(study: "1.2.826.6", sop: "1.2.826.6.1.1")]).status == 403)
            #expect(try await gateway.stow(path: "/studies?priority=urgent", token: gateway.tokenH2, parts: [try makeInstance(study: "1.2.826.6", sop: "1.2.826.6.1.1")]).status == 200)
        }
    }

    @Test func consentIsRecordedOrRequiredAndOpenStudiesAreCapped() async throws {
        try await withGateway { gateway in
            let policies = SitePolicies(client: gateway.client, prefix: gateway.store.prefix)
            try await policies.set(SitePolicy(priorities: Priority.allCases, uploadsPerMinute: 0, openStudies: 2, requireConsent: true), site: "H1")
            let instance = { (study: String, n: Int) in try makeInstance(study: study, sop: "\(study).1.\(n)") }
            let consent = ["X-Consent-Reference": "CONSENT-2026-0001"]
            // A site that must send consent and does not: refused, nothing stored.
            let missing = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance("1.2.826.21", 1)])
            #expect(missing.status == 403 && missing.errorCode == "gateway.consentRequired")
            #expect(try await gateway.store.record(try StudyUID("1.2.826.21")) == nil)
            let malformed = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance("1.2.826.21", 1)],
                                                   headers: ["X-Consent-Reference": String(repeating: "x", count: 129)])
            #expect(malformed.status == 400 && malformed.errorCode == "gateway.badRequest")
            #expect(try await gateway.store.record(try StudyUID("1.2.826.21")) == nil)
            // With it: stored, and the reference kept with the study.
            #expect(try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance("1.2.826.21", 1)], headers: consent).status == 200)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.21"))?.consentReference == "CONSENT-2026-0001")
            let status = try await gateway.get(path: "/studies/1.2.826.21", token: gateway.tokenH1)
            #expect(status.json?["consent"] as? Bool == true)
            // Two studies open: a third is refused with Retry-After and not stored ...
            #expect(try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance("1.2.826.22", 1)], headers: consent).status == 200)
            let third = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance("1.2.826.23", 1)], headers: consent)
            #expect(third.status == 429 && third.errorCode == "gateway.rateLimited")
            #expect(third.headers["Retry-After"].flatMap(Int.init) == 60)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.23")) == nil)
            // ... while an open study still takes more instances.
            #expect(try await gateway.stow(path: "/studies/1.2.826.21", token: gateway.tokenH1, parts: [try instance("1.2.826.21", 2)], headers: consent).status == 200)
            // Another site is not counted against this one.
            #expect(try await gateway.stow(path: "/studies", token: gateway.tokenH2, parts: [try instance("1.2.826.24", 1)]).status == 200)
            // A study that ends leaves the quota (the index follows the record's state).
            var ended = try #require(try await gateway.store.record(try StudyUID("1.2.826.22")))
            ended.state = .failed
            try await gateway.store.repairIndex(ended)
            #expect(try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try instance("1.2.826.23", 1)], headers: consent).status == 200)
        }
    }

    @Test func aSitesShareOfTheStatLaneIsCapped() async throws {
        try await withGateway { gateway in
            let policies = SitePolicies(client: gateway.client, prefix: gateway.store.prefix)
            try await policies.set(SitePolicy(priorities: Priority.allCases, uploadsPerMinute: 0, statOpenStudies: 1), site: "H1")
            let instance = { (study: String, n: Int) in try makeInstance(study: study, sop: "\(study).1.\(n)") }
            #expect(try await gateway.stow(path: "/studies?priority=stat", token: gateway.tokenH1, parts: [try instance("1.2.826.31", 1)]).status == 200)
            // A second stat study is refused, said why, and not stored ...
            let second = try await gateway.stow(path: "/studies?priority=stat", token: gateway.tokenH1, parts: [try instance("1.2.826.32", 1)])
            #expect(second.status == 429 && second.errorCode == "gateway.rateLimited")
            #expect((second.json?["error"] as? [String: Any])?["message"].map { "\($0)".contains("stat share") } == true)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.32")) == nil)
            // ... while the open stat study takes more, urgent work is not counted, and other sites have their own share.
            #expect(try await gateway.stow(path: "/studies/1.2.826.31?priority=stat", token: gateway.tokenH1, parts: [try instance("1.2.826.31", 2)]).status == 200)
            #expect(try await gateway.stow(path: "/studies?priority=urgent", token: gateway.tokenH1, parts: [try instance("1.2.826.32", 1)]).status == 200)
            #expect(try await gateway.stow(path: "/studies?priority=stat", token: gateway.tokenH2, parts: [try instance("1.2.826.33", 1)]).status == 200)
            // The stat study ends: the share is free again.
            var ended = try #require(try await gateway.store.record(try StudyUID("1.2.826.31")))
            ended.state = .reported
            try await gateway.store.repairIndex(ended)
            #expect(try await gateway.stow(path: "/studies?priority=stat", token: gateway.tokenH1, parts: [try instance("1.2.826.34", 1)]).status == 200)
        }
    }

    @Test func tokensAreRequiredAndSitesAreSeparated() async throws {
        try await withGateway { gateway in
            let instance = try makeInstance(study: "1.2.826.2", sop: "1.2.826.2.1.1")
            #expect(try await gateway.stow(path: "/studies", token: nil, parts: [instance]).status == 401)
            #expect(try await gateway.stow(path: "/studies", token: "rgt_wrong", parts: [instance]).status == 401)
            #expect(try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [instance]).status == 200)
            // Reading or committing another site's study answers as for a study that does not exist.
            let foreign = try await gateway.get(path: "/studies/1.2.826.2", token: gateway.tokenH2)
            let missing = try await gateway.get(path: "/studies/1.2.826.404", token: gateway.tokenH2)
            #expect(foreign.status == 404 && foreign.body == missing.body)
            #expect(try await gateway.post(path: "/studies/1.2.826.2/commit", token: gateway.tokenH2).status == 404)
            #expect(try await gateway.get(path: "/studies/1.2.826.2/report", token: gateway.tokenH2).status == 404)
            // A study is (site, UID): H2 sending its own copy of the same UID gets a study of its own
            // and never touches H1's.
            let copy = try makeInstance(study: "1.2.826.2", sop: "1.2.826.2.1.2")
            #expect(try await gateway.stow(path: "/studies/1.2.826.2", token: gateway.tokenH2, parts: [copy]).status == 200)
            #expect(try await gateway.stow(path: "/studies", token: gateway.tokenH2, parts: [try makeInstance(study: "1.2.826.2", sop: "1.2.826.2.1.3")]).status == 200)
            #expect(try await gateway.store.instanceUIDs(try StudyUID("1.2.826.2")).map(\.rawValue) == ["1.2.826.2.1.1"])
            let theirs = try #require(try await gateway.store.record(site: try SiteID("H2"), study: try StudyUID("1.2.826.2")))
            #expect(theirs.uid != theirs.studyInstanceUID && theirs.studyInstanceUID.rawValue == "1.2.826.2" && theirs.site.rawValue == "H2")
            #expect(try await gateway.store.instanceUIDs(theirs.uid).map(\.rawValue).sorted() == ["1.2.826.2.1.2", "1.2.826.2.1.3"])
            // Each site sees and commits its own study under the UID it sent.
            #expect(try await gateway.get(path: "/studies/1.2.826.2", token: gateway.tokenH2).json?["instances"] as? Int == 2)
            #expect(try await gateway.get(path: "/studies/1.2.826.2", token: gateway.tokenH1).json?["instances"] as? Int == 1)
            #expect(try await gateway.post(path: "/studies/1.2.826.2/commit", token: gateway.tokenH2).status == 200)
            #expect(try await gateway.store.record(theirs.uid)?.committed == true)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.2"))?.committed == false)
        }
    }

    @Test func badInputGetsAClear4xxAndStoresNothing() async throws {
        try await withGateway(configure: { $0.maxRequestBytes = 64 << 10 }) { gateway in
            let good = try makeInstance(study: "1.2.826.3", sop: "1.2.826.3.1.1")
            // Truncated DICOM: the part is refused with Failure Reason C000, nothing stored.
            let truncated = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [Array(good.prefix(good.count - 100))])
            #expect(truncated.status == 409)
            let failed = (truncated.json?["00081198"] as? [String: Any])?["Value"] as? [[String: Any]]
            #expect(((failed?.first?["00081197"] as? [String: Any])?["Value"] as? [Int])?.first == 0xC000)
            // Malformed multipart: no closing delimiter.
            var body = Array("--b\r\nContent-Type: application/dicom\r\n\r\n".utf8) + good
            let malformed = try await gateway.raw(path: "/studies", token: gateway.tokenH1, contentType: "multipart/related; type=\"application/dicom\"; boundary=b", body: body)
            #expect(malformed.status == 400)
            #expect(malformed.errorCode == "gateway.malformedMultipart")
            // Wrong media type.
            body = good
            let wrongType = try await gateway.raw(path: "/studies", token: gateway.tokenH1, contentType: "application/octet-stream", body: body)
            #expect(wrongType.status == 415)
            // Oversize request.
            let big = try makeInstance(study: "1.2.826.3", sop: "1.2.826.3.1.2", size: 256)
            let oversize = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [big])
            #expect(oversize.status == 413)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.3")) == nil)
            let keys = try await gateway.client.scanKeys(matching: gateway.store.prefix.value + "{s:*")
            #expect(keys.isEmpty)
        }
    }

    /// Defect of the first wave: stable age counted from the last stored instance, but the
    /// gateway stores nothing until a whole body has arrived, so a slow follow-up upload was
    /// cut off as "late". While a body arrives the site is marked uploading (the sweeper waits).
    @Test func aSlowUploadKeepsItsSiteMarkedUploading() async throws {
        try await withGateway { gateway in
            var body: [UInt8] = []
            body += Array("--rgb\r\nContent-Type: application/dicom\r\n\r\n".utf8) + (try makeInstance(study: "1.2.826.8", sop: "1.2.826.8.1.1"))
            body += Array("\r\n--rgb--\r\n".utf8)
            let port = Int(gateway.baseURL.split(separator: ":").last!)!
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            #expect(connected == 0)
            func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) } }
            let head = "POST /studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(gateway.tokenH1)\r\n"
                + "Content-Type: multipart/related; type=\"application/dicom\"; boundary=rgb\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let site = try SiteID("H1")
            #expect(try await gateway.store.isUploading(site: site) == false)
            send(Array(head.utf8) + Array(body.prefix(body.count / 2)))
            var marked = false
            for _ in 0..<100 where !marked {
                try await Task.sleep(for: .milliseconds(20))
                marked = try await gateway.store.isUploading(site: site)
            }
            #expect(marked, "half a body in: the site is uploading")
            send(Array(body.dropFirst(body.count / 2)))
            var reply = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &reply, reply.count)
            #expect(String(decoding: reply.prefix(max(0, n)), as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            #expect(try await gateway.store.isUploading(site: site) == false, "the body is in: no upload in progress")
        }
    }

    /// Accepted means processable: an instance whose pixel data the grid could never decode
    /// (here MPEG-2 video) is refused at the door with PS3.18's reason C122 and a comment,
    /// nothing of it is stored, and the rest of the request is stored.
    @Test func undecodableInstancesAreRefusedAtTheDoor() async throws {
        try await withGateway { gateway in
            var video = DataSet()
            video.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.77.1.1.1")
            video.set(.sopInstanceUID, "1.2.826.6.1.2")
            video.set(.studyInstanceUID, "1.2.826.6")
            video.set(.seriesInstanceUID, "1.2.826.6.1")
            video.set(.modality, "ES")
            try video.set(.rows, int: 16, vr: .US)
            try video.set(.columns, int: 16, vr: .US)
            try video.set(.samplesPerPixel, int: 3, vr: .US)
            video.set(.photometricInterpretation, "YBR_PARTIAL_420")
            try video.set(.bitsAllocated, int: 8, vr: .US)
            try video.set(.bitsStored, int: 8, vr: .US)
            try video.set(.pixelRepresentation, int: 0, vr: .US)
            video.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(EncapsulatedPixelData(fragments: [[0, 0, 1, 0xB3, 1, 2, 3, 4]]))))
            let mpeg = try DICOMWriter.write(video, encapsulatedTransferSyntaxUID: "1.2.840.10008.1.2.4.100")
            let good = try makeInstance(study: "1.2.826.6", sop: "1.2.826.6.1.1")
            let reply = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [good, mpeg])
            #expect(reply.status == 202, "some stored, some refused")
            let failed = ((reply.json?["00081198"] as? [String: Any])?["Value"] as? [[String: Any]])?.first
            #expect(((failed?["00081197"] as? [String: Any])?["Value"] as? [Int])?.first == 0xC122)
            let comment = ((failed?["00000902"] as? [String: Any])?["Value"] as? [String])?.first ?? ""
            #expect(comment.contains("dicom.unsupportedTransferSyntax") && comment.contains("1.2.840.10008.1.2.4.100"), "comment: \(comment)")
            #expect(try await gateway.store.instanceUIDs(try StudyUID("1.2.826.6")).map(\.rawValue) == ["1.2.826.6.1.1"])
        }
    }

    @Test func backpressureAnswers429WithRetryAfter() async throws {
        try await withGateway(configure: { $0.backpressure.maxWaitingStudies = 0 }) { gateway in
            let first = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try makeInstance(study: "1.2.826.4", sop: "1.2.826.4.1.1")])
            #expect(first.status == 200)
            try await Task.sleep(for: .milliseconds(1100))  // past the 1 s sampling interval
            let second = try await gateway.stow(path: "/studies", token: gateway.tokenH1, parts: [try makeInstance(study: "1.2.826.5", sop: "1.2.826.5.1.1")])
            #expect(second.status == 429)
            #expect(second.headers["Retry-After"] != nil)
            #expect(try await gateway.store.record(try StudyUID("1.2.826.5")) == nil)
        }
    }
}

/// A CT slice written by our own writer: `size`×`size` int16.
func makeInstance(study: String, sop: String, size: Int = 16) throws -> [UInt8] {
    var dataSet = DataSet()
    dataSet.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.2")
    dataSet.set(.sopInstanceUID, sop)
    dataSet.set(.studyInstanceUID, study)
    dataSet.set(.seriesInstanceUID, study + ".1")
    dataSet.set(.modality, "CT")
    dataSet.set(.bodyPartExamined, "HEAD")
    try dataSet.setPixelData(.int16((0..<(size * size)).map { Int16(truncatingIfNeeded: $0) }), rows: size, columns: size)
    return try DICOMWriter.write(dataSet)
}

struct GatewayFixture {
    struct Reply {
        var status: Int
        var body: [UInt8]
        var headers: [String: String]
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
        var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
    }

    let baseURL: String
    let client: RedisClient
    let store: StudyStore
    let tokenH1: String
    let tokenH2: String

    func stow(path: String, token: String?, parts: [[UInt8]], headers: [String: String] = [:]) async throws -> Reply {
        var body: [UInt8] = []
        for part in parts {
            body += Array("--rgb\r\nContent-Type: application/dicom\r\n\r\n".utf8) + part + Array("\r\n".utf8)
        }
        body += Array("--rgb--\r\n".utf8)
        return try await raw(path: path, token: token, contentType: "multipart/related; type=\"application/dicom\"; boundary=rgb", body: body, headers: headers)
    }

    func post(path: String, token: String?) async throws -> Reply {
        try await raw(path: path, token: token, contentType: nil, body: [])
    }

    func get(path: String, token: String?) async throws -> Reply {
        try await raw(path: path, token: token, contentType: nil, body: nil)
    }

    func raw(path: String, token: String?, contentType: String?, body: [UInt8]?, encoding: String? = nil, headers extra: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        for (name, value) in extra { request.setValue(value, forHTTPHeaderField: name) }
        request.httpMethod = body == nil ? "GET" : "POST"
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let encoding { request.setValue(encoding, forHTTPHeaderField: "Content-Encoding") }
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        let (data, response): (Data, URLResponse)
        if let body {
            (data, response) = try await URLSession.shared.upload(for: request, from: Data(body))
        } else {
            (data, response) = try await URLSession.shared.data(for: request)
        }
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http?.allHeaderFields ?? [:] { headers["\(key)"] = "\(value)" }
        return Reply(status: http?.statusCode ?? 0, body: Array(data), headers: headers)
    }
}

/// A plain TCP client for requests that a URL session would not send (half a body, then silence).
final class RawHTTP {
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func connect(port: Int) throws -> RawHTTP {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard fd >= 0, connected == 0 else { throw TestSupportError("cannot connect to 127.0.0.1:\(port)") }
        return RawHTTP(fd: fd)
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw TestSupportError("send failed") }
            offset += n
        }
    }

    /// One chunk of a chunked body (an empty one ends the body).
    func sendChunk(_ bytes: [UInt8]) throws {
        try send(Array(String(bytes.count, radix: 16).utf8) + [0x0D, 0x0A] + bytes + [0x0D, 0x0A])
    }

    /// What the server answers, waiting up to `timeout` for the first bytes.
    func receiveResponse(timeout: Duration) -> String {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000)
        guard Glibc.poll(&poll, 1, milliseconds) > 0 else { return "nothing within \(timeout)" }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : "closed"
    }

    func close() { Glibc.close(fd) }
}
