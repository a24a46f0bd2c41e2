import ArgumentParser

struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ping", abstract: "Report the Redis version and round-trip time.")
    func run() async throws { print("PONG") }
}
