// The WorkerDaemon module; see docs/ARCHITECTURE.md.
