import ArgumentParser
import RadGridCtl

@main
struct RadGridCtlMain: AsyncParsableCommand {
    static let configuration = RadGridCtlCommand.configuration
}
