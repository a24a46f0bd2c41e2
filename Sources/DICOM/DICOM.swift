// The DICOM module; see docs/ARCHITECTURE.md.
