import ArgumentParser

@main
struct RadGridCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "radgrid", abstract: "RadGrid daemons.")
}
