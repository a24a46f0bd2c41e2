import Foundation
import RedisClient
import Synchronization
import TaskQueue
import TestSupport
import Testing

/// Redis between hosts over TLS as docs/OPERATIONS.md sets it up: redis-server with a password
/// on 127.0.0.1, the Redis host's stunnel from Ops/stunnel/redis-server.conf, a grid host's
/// stunnel from Ops/stunnel/redis-client.conf, certificates from scripts/redis-tls-certs.sh.
/// The shipped files are used as they are, only their placeholders filled in. Missing
/// stunnel4, openssl or redis-server fail these tests (scripts/deps.sh installs them).
@Suite("Redis between hosts over TLS (Ops/stunnel)", .serialized)
struct RedisOverTLSTests {
    @Test func theGridsRedisClientWorksThroughTheTunnelAndTheWireCarriesNoPlaintext() async throws {
        let setup = try await RedisTLSSetup.start("work")
        defer { setup.stop() }
        let marker = "radgrid-plaintext-probe-\(UUID().uuidString)"
        // How a grid process points at Redis on its host: the client stunnel's local port.
        let client = try RedisClient(url: "redis://:\(RedisTLSSetup.password)@127.0.0.1:\(setup.localPort)")
        defer { client.shutdown() }

        try await client.send("SET", "rg:marker", RedisArgument(marker))
        #expect(try await client.send("GET", "rg:marker").string == marker)
        #expect(try await client.send("INCRBY", "rg:counter", 41).int == 41)
        // A value far larger than a TLS record, with every byte value.
        var generator = SystemRandomNumberGenerator()
        let blob = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try await client.send("SET", "rg:blob", RedisArgument(blob))
        #expect(try await client.send("GET", "rg:blob").bytes == blob)
        // Pipelined batches cross the tunnel in order.
        let sets = (0..<500).map { RedisCommand("SET", RedisArgument("rg:p:\($0)"), RedisArgument("v\($0)")) }
        #expect(try await client.pipeline(sets).allSatisfy { $0 == .status("OK") })
        let gets = try await client.pipeline((0..<500).map { RedisCommand("GET", RedisArgument("rg:p:\($0)")) })
        #expect(gets.map { $0.string ?? "" } == (0..<500).map { "v\($0)" })

        // The task queue's Lua scripts and streams: enqueue, claim, complete.
        let queue = TaskQueue(client: client, name: "tasks", configuration: TaskQueueConfiguration(prefix: KeyPrefix("rg:")))
        let spec = TaskSpec(key: "study/sop/decode", payload: Array(marker.utf8), lane: .routine)
        guard case .enqueued = try await queue.enqueue(spec) else { Issue.record("the task was not enqueued"); return }
        let batch = try await queue.claim(consumer: "worker-1", count: 10)
        #expect(batch.tasks.map(\.key) == [spec.key] && batch.tasks.first?.payload == spec.payload)
        for task in batch.tasks { #expect(try await queue.complete(task) == .accepted(nextTask: nil)) }

        // Inside the tunnel Redis's own authentication still decides: ACL users, passwords.
        let workerPassword = "worker-\(UUID().uuidString)"
        try await client.send("ACL", "SETUSER", "grid-worker", "on", RedisArgument(">" + workerPassword), "~rg:*", "+@all")
        let worker = try RedisClient(url: "redis://grid-worker:\(workerPassword)@127.0.0.1:\(setup.localPort)")
        defer { worker.shutdown() }
        try await worker.send("SET", "rg:worker-probe", "1")
        let outside = await #expect(throws: RedisError.self) { try await worker.send("SET", "elsewhere", "1") }
        #expect(outside?.message.contains("NOPERM") == true, "\(String(describing: outside))")
        for (url, reply) in [("redis://grid-worker:wrong-\(UUID().uuidString)@127.0.0.1:\(setup.localPort)", "WRONGPASS"),
                             ("redis://127.0.0.1:\(setup.localPort)", "NOAUTH")] {
            let stranger = try RedisClient(url: url)
            defer { stranger.shutdown() }
            let refused = await #expect(throws: RedisError.self) { try await stranger.send("GET", "rg:marker") }
            #expect(refused?.message.contains(reply) == true, "\(String(describing: refused))")
        }

        // What crossed the network between the two stunnels is TLS: no password, no marker,
        // no part of the value.
        let wire = setup.tap.captured()
        #expect(wire.count > blob.count, "the tap between the stunnels saw only \(wire.count) bytes")
        #expect(wire.first == 0x16, "the first bytes on the wire are not a TLS handshake record")
        for (what, needle) in [("the password", Data(RedisTLSSetup.password.utf8)), ("the worker's password", Data(workerPassword.utf8)),
                               ("a value", Data(marker.utf8)), ("a binary value", Data(blob.prefix(64)))] {
            #expect(wire.range(of: needle) == nil, "\(what) crossed the wire in plaintext")
        }
        #expect(setup.serverStunnel.log.contains("Certificate accepted"), "\(setup.serverStunnel.log)")
    }

    @Test func plainTCPToTheTLSPortGetsNoRedisReply() async throws {
        let setup = try await RedisTLSSetup.start("plain")
        defer { setup.stop() }
        let probe = Array("AUTH \(RedisTLSSetup.password)\r\nPING\r\nQUIT\r\n".utf8)
        // The probe works on Redis's own port (so its silence below means something)...
        let direct = String(decoding: try RedisTLSSetup.exchange(port: setup.redisPort, sending: probe), as: UTF8.self)
        #expect(direct.contains("+PONG"), "\(direct)")
        // ...and gets nothing from Redis on the TLS port: stunnel drops it at the handshake.
        let answer = try RedisTLSSetup.exchange(port: setup.tlsPort, sending: probe)
        let text = String(decoding: answer, as: UTF8.self)
        #expect(!text.contains("PONG") && !text.contains("+OK") && !text.contains("NOAUTH") && !text.contains("-ERR"), "\(answer)")

        // The grid's own client pointed straight at the TLS port fails instead of talking.
        let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: setup.tlsPort), password: RedisTLSSetup.password,
                                                                   commandTimeout: .seconds(3), poolSize: 1, reconnectWait: .zero))
        defer { client.shutdown() }
        await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(setup.serverStunnel.log.contains("SSL_accept"), "\(setup.serverStunnel.log)")
    }

    @Test func aTLSClientWithoutACertificateFromTheGridsCAIsRefused() async throws {
        let setup = try await RedisTLSSetup.start("nocert")
        defer { setup.stop() }
        // openssl s_client: the same Redis commands, without and with the client certificate.
        let anonymous = try await setup.sClient(certificate: false)
        #expect(!anonymous.contains("PONG"), "a TLS client without a certificate reached Redis: \(anonymous)")
        let identified = try await setup.sClient(certificate: true)
        #expect(identified.contains("+PONG"), "with the client certificate: \(identified)")

        // A grid host's stunnel without its certificate: the grid's client gets nowhere.
        let (stunnel, port) = try await setup.anotherClientStunnel(name: "nocert", redisHost: "localhost", certificate: false)
        defer { stunnel.stop() }
        let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), password: RedisTLSSetup.password,
                                                                   commandTimeout: .seconds(3), poolSize: 1, reconnectWait: .zero))
        defer { client.shutdown() }
        await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(setup.serverStunnel.log.contains("peer did not return a certificate"), "\(setup.serverStunnel.log)")
    }

    @Test func aGridHostRefusesAServerWhoseCertificateNamesAnotherHost() async throws {
        let setup = try await RedisTLSSetup.start("name")
        defer { setup.stop() }
        // The server certificate names `localhost` only; checkHost = 127.0.0.1 must not accept it.
        let (stunnel, port) = try await setup.anotherClientStunnel(name: "wrongname", redisHost: "127.0.0.1", certificate: true)
        defer { stunnel.stop() }
        let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), password: RedisTLSSetup.password,
                                                                   commandTimeout: .seconds(3), poolSize: 1, reconnectWait: .zero))
        defer { client.shutdown() }
        await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(stunnel.log.contains("Subject checks failed") || stunnel.log.contains("certificate verify failed"), "\(stunnel.log)")
    }
}

/// One Redis host and one grid host on this machine, every port free-picked; a tap between the
/// two stunnels stands for the network.
struct RedisTLSSetup {
    static let password = "redis-\(UUID().uuidString)"
    /// The name in the test server certificate, which the client stunnel checks.
    static let serverName = "localhost"

    let work: String
    let pki: TestPKI
    let redis: ChildProcess
    let redisPort: Int
    let serverStunnel: StunnelProcess
    let tlsPort: Int
    let tap: WireTap
    let gridHostStunnel: StunnelProcess
    let localPort: Int

    static func start(_ name: String) async throws -> RedisTLSSetup {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-redis-tls-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var started: [() -> Void] = [{ try? FileManager.default.removeItem(atPath: work) }]
        do {
            let pki = try await TestPKI.make(in: work + "/pki", serverNames: serverName)
            let redisPort = try freePort()
            let redis = try ChildProcess(name: "redis-server", executable: try redisServer(), arguments: [
                "--port", String(redisPort), "--bind", "127.0.0.1", "--requirepass", password, "--save", "", "--appendonly", "no",
                "--dir", work, "--daemonize", "no", "--logfile", work + "/redis.log",
            ])
            started.append { redis.terminate(grace: .seconds(5)) }
            try await waitForRedis(port: redisPort, log: work + "/redis.log")

            let tlsPort = try freePort()
            let serverConfig = try render("redis-server.conf", [
                "TLS_DIR": work + "/pki", "LISTEN": "127.0.0.1:\(tlsPort)", "REDIS_PORT": String(redisPort),
            ])
            let serverStunnel = try await StunnelProcess.start(config: serverConfig, at: work + "/redis-server.conf", listeningOn: tlsPort,
                                                               log: work + "/stunnel-server.log")
            started.append { serverStunnel.stop() }
            let tap = try WireTap(upstreamPort: tlsPort)
            started.append { tap.stop() }
            let (gridHostStunnel, localPort) = try await startClientStunnel(work: work, name: "client", redisHost: serverName, tlsPort: tap.port, certificate: true)
            return RedisTLSSetup(work: work, pki: pki, redis: redis, redisPort: redisPort, serverStunnel: serverStunnel, tlsPort: tlsPort,
                                 tap: tap, gridHostStunnel: gridHostStunnel, localPort: localPort)
        } catch {
            for stop in started.reversed() { stop() }
            throw error
        }
    }

    func stop() {
        gridHostStunnel.stop()
        tap.stop()
        serverStunnel.stop()
        redis.terminate(grace: .seconds(5))
        try? FileManager.default.removeItem(atPath: work)
    }

    /// Another grid host's stunnel, straight to the TLS port; `certificate: false` leaves out
    /// its cert and key lines.
    func anotherClientStunnel(name: String, redisHost: String, certificate: Bool) async throws -> (StunnelProcess, Int) {
        try await Self.startClientStunnel(work: work, name: name, redisHost: redisHost, tlsPort: tlsPort, certificate: certificate)
    }

    /// A grid host's stunnel from the shipped config, on a free local port.
    static func startClientStunnel(work: String, name: String, redisHost: String, tlsPort: Int, certificate: Bool) async throws -> (StunnelProcess, Int) {
        let localPort = try freePort()
        var config = try render("redis-client.conf", [
            "TLS_DIR": work + "/pki", "LOCAL_PORT": String(localPort), "REDIS_HOST": redisHost, "TLS_PORT": String(tlsPort),
        ])
        if !certificate {
            config = config.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("cert =") && !$0.hasPrefix("key =") }.joined(separator: "\n")
        }
        let stunnel = try await StunnelProcess.start(config: config, at: "\(work)/\(name).conf", listeningOn: localPort, log: "\(work)/stunnel-\(name).log")
        return (stunnel, localPort)
    }

    /// `openssl s_client` to the TLS port sending AUTH, PING and QUIT; its output.
    func sClient(certificate: Bool) async throws -> String {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { throw TestSupportError("/usr/bin/openssl is missing") }
        var command = "printf 'AUTH %s\\r\\nPING\\r\\nQUIT\\r\\n' '\(Self.password)' | /usr/bin/openssl s_client -quiet -connect 127.0.0.1:\(tlsPort)"
            + " -CAfile '\(pki.ca)' -verify_return_error -verify_hostname \(Self.serverName)"
        if certificate { command += " -cert '\(pki.clientCertificate)' -key '\(pki.clientKey)'" }
        let log = "\(work)/s_client-\(certificate ? "cert" : "anonymous").log"
        let process = try ChildProcess(name: "openssl", executable: "/bin/sh", arguments: ["-c", command], outputPath: log)
        if await process.exit(timeout: .seconds(20)) == nil { _ = process.signal(SIGKILL) }
        return (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    }

    /// The shipped stunnel config with its placeholders filled in.
    static func render(_ file: String, _ values: [String: String]) throws -> String {
        var text = try String(contentsOf: Corpus.packageRoot.appendingPathComponent("Ops/stunnel/" + file), encoding: .utf8)
        for (name, value) in values { text = text.replacingOccurrences(of: "@\(name)@", with: value) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let unfilled = lines.first(where: { !$0.hasPrefix(";") && $0.contains("@") }) {
            throw TestSupportError("Ops/stunnel/\(file): placeholder left in: \(unfilled)")
        }
        // The test runs unprivileged, with files of its own: no switch to the stunnel4 user.
        return lines.filter { !$0.hasPrefix("setuid") && !$0.hasPrefix("setgid") }.joined(separator: "\n")
    }

    static func redisServer() throws -> String {
        if let path = ProcessInfo.processInfo.environment["RADGRID_REDIS_SERVER"], !path.isEmpty { return path }
        guard let path = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSupportError("redis-server is missing (scripts/deps.sh installs it)")
        }
        return path
    }

    static func waitForRedis(port: Int, log: String) async throws {
        let client = RedisClient(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), password: password,
                                                                   connectTimeout: .milliseconds(200), reconnectWait: .zero))
        defer { client.shutdown() }
        for _ in 0..<200 {
            if (try? await client.send("PING")) == .status("PONG") { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSupportError("redis-server on port \(port) did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// Connects to 127.0.0.1:`port`, sends `bytes` and returns what comes back until the peer
    /// closes or 3 s pass.
    static func exchange(port: Int, sending bytes: [UInt8]) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = WireTap.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestSupportError("cannot connect to 127.0.0.1:\(port)") }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return received
    }
}

/// A TCP relay on 127.0.0.1 that forwards to `upstreamPort` and keeps a copy of every byte it
/// passes, both directions: what an observer on the network between the hosts would see.
final class WireTap: Sendable {
    let port: Int
    private let listener: Int32
    private let upstreamPort: Int
    private let state = Mutex<(bytes: Data, open: Set<Int32>, stopped: Bool)>((Data(), [], false))

    init(upstreamPort: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed") }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard bound == 0, named == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw TestSupportError("the wire tap cannot listen")
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        self.upstreamPort = upstreamPort
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Everything relayed so far.
    func captured() -> Data { state.withLock { $0.bytes } }

    func stop() {
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            // Wakes accept() and every relay's poll(); each relay closes its own sockets.
            shutdown(listener, Int32(SHUT_RDWR))
            for fd in state.open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let downstream = accept(listener, nil, nil)
            if downstream < 0 { return }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            var connected = false
            if upstream >= 0 {
                connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                } == 0
            }
            let admitted = state.withLock { state in
                guard connected, !state.stopped else { return false }
                state.open.formUnion([downstream, upstream])
                return true
            }
            guard admitted else {
                close(downstream)
                if upstream >= 0 { close(upstream) }
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            Thread.detachNewThread { [self] in relay(downstream, upstream) }
        }
    }

    private func relay(_ a: Int32, _ b: Int32) {
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        pumping: while poll(&fds, 2, -1) > 0 {
            for index in 0..<2 where fds[index].revents != 0 {
                let target = index == 0 ? b : a
                let count = buffer.withUnsafeMutableBytes { recv(fds[index].fd, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break pumping }
                state.withLock { $0.bytes.append(contentsOf: buffer[0..<count]) }
                var sent = 0
                while sent < count {
                    let written = buffer.withUnsafeBytes { send(target, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                    if written <= 0 { break pumping }
                    sent += written
                }
            }
        }
        state.withLock { state in
            state.open.subtract([a, b])
            close(a)
            close(b)
        }
    }
}
