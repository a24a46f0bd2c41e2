import RadGridCtl

await RadGridCtlCommand.runAsync()
