// The TaskQueue module; see docs/ARCHITECTURE.md.
