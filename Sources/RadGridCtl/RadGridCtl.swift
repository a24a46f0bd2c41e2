import ArgumentParser

/// `radgridctl`: the admin CLI for coordinators and ops staff.
public struct RadGridCtlCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "radgridctl",
        abstract: "Watch and steer a RadGrid deployment.",
        subcommands: [PingCommand.self, InspectCommand.self]
    )

    public init() {}

    /// The async entry point for main.swift. `await RadGridCtlCommand.main()` there resolves
    /// to ArgumentParser's synchronous `main()`, which refuses async commands at run time
    /// ("Asynchronous root command needs availability annotation").
    public static func runAsync() async {
        do {
            var command = try parseAsRoot(nil)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
