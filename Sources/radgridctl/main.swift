import RadGridCtl

// Inside an async function overload resolution picks ArgumentParser's async `main`;
// at top level it picked the synchronous one, which refuses async root commands.
func runRadGridCtl() async { await RadGridCtlCommand.main(nil) }
await runRadGridCtl()
