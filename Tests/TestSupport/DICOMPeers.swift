import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Runs a dcmtk command-line tool (`echoscu`, `storescu`, ...) to completion.
public enum DcmtkTool {
    /// The exit status and everything the tool wrote to stdout and stderr; throws (after
    /// killing it) when it does not finish within `timeout`.
    public static func run(_ tool: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> (status: Int32, output: String) {
        let executable = try PeerSupport.executable(tool, package: "dcmtk")
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-\(tool)-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let process = try ChildProcess(name: tool, executable: executable, arguments: arguments, outputPath: log.path)
        guard let status = await process.exit(timeout: timeout) else {
            process.signal(SIGKILL)
            await process.exit(timeout: .seconds(5))
            throw TestSupportError("\(tool) \(arguments.joined(separator: " ")) did not finish within \(timeout):\n\(PeerSupport.text(log))")
        }
        return (status, PeerSupport.text(log))
    }
}

/// dcmtk `storescp` on a free port, writing every instance it receives under `directory`.
public final class StoreSCP: Sendable {
    public let port: Int
    public let aeTitle: String
    /// Received files, named `<modality>.<SOP Instance UID>` by storescp.
    public let directory: URL
    private let root: URL
    private let process: ChildProcess

    private init(port: Int, aeTitle: String, root: URL, process: ChildProcess) {
        (self.port, self.aeTitle, self.root, self.process) = (port, aeTitle, root, process)
        directory = root.appendingPathComponent("received")
    }

    deinit {
        process.signal(SIGKILL)
        process.wait(timeout: .seconds(5))
        try? FileManager.default.removeItem(at: root)
    }

    /// Starts storescp (accepting every transfer syntax it knows) and waits until its port
    /// accepts connections.
    public static func start(aeTitle: String = "PACS") async throws -> StoreSCP {
        let executable = try PeerSupport.executable("storescp", package: "dcmtk")
        let root = try PeerSupport.temporaryDirectory("storescp")
        let received = root.appendingPathComponent("received")
        let log = root.appendingPathComponent("storescp.log")
        do {
            try FileManager.default.createDirectory(at: received, withIntermediateDirectories: true)
            // Another process may take the free port before storescp binds it: try again.
            for _ in 0..<3 {
                let port = ChildProcess.freePort()
                let process = try ChildProcess(name: "storescp", executable: executable, arguments: [
                    "--aetitle", aeTitle, "--output-directory", received.path, "--accept-all", "--disable-host-lookup", String(port),
                ], outputPath: log.path)
                if try await PeerSupport.waitUntilReady(process, log: log, { PeerSupport.accepts(port: port) }) {
                    return StoreSCP(port: port, aeTitle: aeTitle, root: root, process: process)
                }
            }
            throw TestSupportError("storescp exited before accepting connections:\n\(PeerSupport.text(log))")
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw error
        }
    }

    /// Every regular file received so far, sorted by path.
    public func receivedFiles() -> [URL] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        return enumerator.compactMap { $0 as? URL }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .sorted { $0.path < $1.path }
    }

    /// Waits until at least `count` files exist and none is still growing (storescp writes
    /// each file in place, so a file can be seen half-written).
    public func waitForFiles(count: Int, timeout: Duration) async throws -> [URL] {
        let deadline = ContinuousClock.now + timeout
        var previous: [String: Int] = [:]
        while ContinuousClock.now < deadline {
            let files = receivedFiles()
            let sizes = Dictionary(uniqueKeysWithValues: files.map { ($0.path, (try? $0.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? -1) })
            if files.count >= count, sizes == previous { return files }
            previous = sizes
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("storescp received \(receivedFiles().count) of \(count) files within \(timeout):\n\(logText())")
    }

    public func logText() -> String { PeerSupport.text(root.appendingPathComponent("storescp.log")) }
    public func stop() { process.terminate(grace: .seconds(5)) }
}

/// A private Orthanc: its own free HTTP and DICOM ports, storage, index and log in a temp dir.
public final class OrthancPeer: Sendable {
    public let httpPort: Int
    public let dicomPort: Int
    public let aeTitle: String
    public let directory: URL
    private let process: ChildProcess

    private init(httpPort: Int, dicomPort: Int, aeTitle: String, directory: URL, process: ChildProcess) {
        (self.httpPort, self.dicomPort, self.aeTitle, self.directory, self.process) = (httpPort, dicomPort, aeTitle, directory, process)
    }

    deinit {
        process.signal(SIGKILL)
        process.wait(timeout: .seconds(5))
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts Orthanc, without plugins, knowing `modalities` (symbolic name -> AE, host, port),
    /// and waits until its REST API answers.
    public static func start(aeTitle: String = "ORTHANC", modalities: [String: (aeTitle: String, host: String, port: Int)] = [:]) async throws -> OrthancPeer {
        let executable = try PeerSupport.executable("Orthanc", package: "orthanc")
        let root = try PeerSupport.temporaryDirectory("orthanc")
        let log = root.appendingPathComponent("orthanc.log")
        let config = root.appendingPathComponent("orthanc.json")
        do {
            for _ in 0..<3 {
                let httpPort = ChildProcess.freePort()
                var dicomPort = ChildProcess.freePort()
                while dicomPort == httpPort { dicomPort = ChildProcess.freePort() }
                let settings: [String: Any] = [
                    "Name": "RadGridTest",
                    "StorageDirectory": root.appendingPathComponent("storage").path,
                    "IndexDirectory": root.appendingPathComponent("index").path,
                    "HttpPort": httpPort, "DicomPort": dicomPort, "DicomAet": aeTitle,
                    "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
                    // An empty list overrides the plugin folder of the Debian package.
                    "Plugins": [String](),
                    "UnknownSopClassAccepted": true, "SaveJobs": false,
                    "DicomModalities": modalities.mapValues { [$0.aeTitle, $0.host, $0.port] as [Any] },
                ]
                try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys]).write(to: config)
                let process = try ChildProcess(name: "orthanc", executable: executable, arguments: ["--logfile=\(log.path)", config.path],
                                               outputPath: root.appendingPathComponent("orthanc.out").path)
                let ready = try await PeerSupport.waitUntilReady(process, log: log, timeout: .seconds(90)) {
                    guard let reply = try? await PeerSupport.http("GET", port: httpPort, path: "/system", timeout: 2) else { return false }
                    return reply.status == 200 && PeerSupport.accepts(port: dicomPort)
                }
                if ready { return OrthancPeer(httpPort: httpPort, dicomPort: dicomPort, aeTitle: aeTitle, directory: root, process: process) }
            }
            throw TestSupportError("Orthanc exited before answering:\n\(PeerSupport.text(log))\(PeerSupport.text(root.appendingPathComponent("orthanc.out")))")
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw error
        }
    }

    /// POST /instances: stores a DICOM file; its Orthanc instance ID.
    public func upload(_ file: URL) async throws -> String {
        let answer = try await call("POST", "/instances", body: try Data(contentsOf: file))
        guard let id = (answer as? [String: Any])?["ID"] as? String else { throw TestSupportError("Orthanc upload of \(file.path): no ID in \(answer)") }
        return id
    }

    /// GET /studies: the Orthanc IDs of the stored studies.
    public func studies() async throws -> [String] {
        let answer = try await call("GET", "/studies")
        guard let ids = answer as? [String] else { throw TestSupportError("Orthanc /studies: unexpected \(answer)") }
        return ids
    }

    /// C-STOREs Orthanc resources (patients, studies, series or instances) to the modality
    /// `name`; returns Orthanc's answer once the transfer is done.
    public func storeToModality(_ name: String, resources: [String]) async throws -> sending [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: ["Resources": resources, "Synchronous": true] as [String: Any])
        let answer = try await call("POST", "/modalities/\(PeerSupport.escape(name))/store", body: body)
        guard let object = answer as? [String: Any] else { throw TestSupportError("Orthanc store to \(name): unexpected \(answer)") }
        return object
    }

    /// C-ECHO to the modality `name`: false when the echo fails; throws when Orthanc does not
    /// know the modality (a mistake in the test, not a failed echo).
    public func echo(_ name: String) async throws -> Bool {
        let reply = try await PeerSupport.http("POST", port: httpPort, path: "/modalities/\(PeerSupport.escape(name))/echo", body: Data("{}".utf8))
        if reply.status == 404 { throw TestSupportError("Orthanc knows no modality \(name): \(String(decoding: reply.body, as: UTF8.self))") }
        return (200..<300).contains(reply.status)
    }

    /// Orthanc's log, then anything it wrote to stdout/stderr (crashes).
    public func logText() -> String {
        PeerSupport.text(directory.appendingPathComponent("orthanc.log")) + PeerSupport.text(directory.appendingPathComponent("orthanc.out"))
    }
    public func stop() { process.terminate(grace: .seconds(15)) }

    private func call(_ method: String, _ path: String, body: Data? = nil) async throws -> Any {
        let reply = try await PeerSupport.http(method, port: httpPort, path: path, body: body)
        guard (200..<300).contains(reply.status) else {
            throw TestSupportError("Orthanc \(method) \(path): HTTP \(reply.status): \(String(decoding: reply.body, as: UTF8.self))")
        }
        return try JSONSerialization.jsonObject(with: reply.body, options: [.fragmentsAllowed])
    }
}

enum PeerSupport {
    /// The absolute path of `name` in PATH, /usr/sbin or /usr/bin. Throws rather than letting
    /// tests skip: a missing peer must fail the run.
    static func executable(_ name: String, package: String) throws -> String {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestSupportError("\(name) not found in PATH, /usr/sbin or /usr/bin: install the Debian package \(package)")
    }

    static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func text(_ url: URL) -> String { (try? Data(contentsOf: url)).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    static func escape(_ component: String) -> String { component.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? component }

    /// Polls `ready` until it holds (true), the process exits (false: the caller may retry on
    /// other ports) or `timeout` passes (throws).
    static func waitUntilReady(_ process: ChildProcess, log: URL, timeout: Duration = .seconds(30), _ ready: () async -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { return false }
            if await ready() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("\(process.name) did not become ready within \(timeout):\n\(text(log))")
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    static func http(_ method: String, port: Int, path: String, body: Data? = nil, timeout: TimeInterval = 300) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: timeout)
        request.httpMethod = method
        let (data, response) = if let body {
            try await URLSession.shared.upload(for: request, from: body)
        } else {
            try await URLSession.shared.data(for: request)
        }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}
