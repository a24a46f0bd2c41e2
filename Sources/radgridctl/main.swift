import RadGridCtl

await RadGridCtlCommand.main()
