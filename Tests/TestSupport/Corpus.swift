import Foundation

/// The reference DICOM corpus (`../shared/corpus` next to the project), absent in a user's
/// clone: tests that use it are `.enabled(if: Corpus.isAvailable)`.
public enum Corpus {
    public static var directory: URL? {
        if let override = ProcessInfo.processInfo.environment["RADGRID_CORPUS_DIR"] {
            return URL(fileURLWithPath: override)
        }
        // Tests/TestSupport/Corpus.swift -> package root -> ../shared/corpus
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = root.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
    }

    public static var isAvailable: Bool { directory != nil }

    /// The package root (for locating built executables in integration tests).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
