import ArgumentParser

/// `radgrid-bench`: benchmarks and validation runs, kept apart from the tests.
/// Each subcommand prints a table, and with `--json` one JSON object as its last line.
@main
struct RadGridBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "radgrid-bench",
        abstract: "Benchmarks and validation runs for RadGrid.",
        subcommands: [
            // One line per benchmark; each lives in its own file.
            QueueBench.self,
            QueueWorkerCommand.self,
            RouterBench.self,
            ScreenBench.self,
            ScreenDataCommand.self,
            PipelineBench.self,
            CodecBench.self,
            E2EBench.self,
            ScaleBench.self,
            DurabilityBench.self,
            ChaosBench.self,
            PortalBench.self,
            DIMSEBench.self,
            GatewayBench.self,
            EdgeBench.self,
        ]
    )
}
