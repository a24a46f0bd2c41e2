import ArgumentParser

/// `radgrid`: the grid's daemons, one role per subcommand. Each subcommand only builds a
/// `ServiceGroup` of the role's services with graceful shutdown on SIGTERM/SIGINT.
@main
struct RadGridCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "radgrid",
        abstract: "RadGrid daemons: run one role of the grid.",
        subcommands: [
            // One line per daemon; each lives in its own file.
            GatewayCommand.self,
            RouterCommand.self,
            CoordinatorCommand.self,
            PortalCommand.self,
            DIMSECommand.self,
            EdgeCommand.self,
            AuditorCommand.self,
            FeedCommand.self,
            UpCommand.self,
        ]
    )
}
