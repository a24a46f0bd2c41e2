import ArgumentParser

/// `radgridctl`: the admin CLI for coordinators and ops staff.
public struct RadGridCtlCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "radgridctl",
        abstract: "Watch and steer a RadGrid deployment.",
        subcommands: [
            PingCommand.self,
            InspectCommand.self,
            DeidCommand.self,
            QueuesCommand.self,
            DLQCommand.self,
            AuditCommand.self,
            ACLCommand.self,
            StudyCommand.self,
            SitesCommand.self,
            DIMSECtlCommand.self,
            EdgeCtlCommand.self,
            CriticalCommand.self,
            SubmitCommand.self,
            ExpertsCommand.self,
            AccountsCommand.self,
            CaseCommand.self,
            PreprocessCommand.self,
            ScreenCommand.self,
            PhantomCommand.self,
            StatusCommand.self,
            TopCommand.self,
            DemoCommand.self,
            LifecycleCommand.self,
            QCCommand.self,
            KeysCommand.self,
        ]
    )

    public init() {}
}
