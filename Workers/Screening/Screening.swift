// The Screening module; see docs/ARCHITECTURE.md.
