import RadGridCore

/// A private redis-server for one benchmark run (no persistence) on a free port.
enum BenchRedis {
    static func start(logDirectory: String) async throws -> (process: ChildProcess, url: String) {
        let port = ChildProcess.freePort()
        let process = try ChildProcess(executable: "redis-server", arguments: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                       outputPath: logDirectory + "/redis.log")
        try await Task.sleep(for: .milliseconds(500))
        return (process, "redis://127.0.0.1:\(port)")
    }
}
