import ArgumentParser
import StudyLifecycle

/// `radgridctl lifecycle`: the study state machine's table of transitions, computed from
/// the code (docs/LIFECYCLE.md holds the same table; a test keeps them equal).
struct LifecycleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lifecycle", abstract: "Print the study state machine's table of transitions (Markdown).")

    func run() throws {
        print(TransitionTable.markdown())
    }
}
