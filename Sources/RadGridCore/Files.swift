#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small file helpers for daemons and tools that stay free of Foundation.
public enum Files {
    /// Creates `path` and its parents (`mkdir -p`); new directories get `mode`.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, mode) != 0 && errno != EEXIST {
                throw RadGridError(code: "file.mkdir", message: "cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
        _ = chmod(path, mode)
    }

    /// Writes `text` to `path` (replacing it) with file mode `mode`.
    public static func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        try write(path, text, mode: mode, flags: O_TRUNC, sync: false)
    }

    /// Appends `text` to `path` (created with `mode`) and waits until it is on disk: for
    /// append-only records such as the audit checkpoints.
    public static func append(_ path: String, _ text: String, mode: mode_t = 0o600) throws {
        try write(path, text, mode: mode, flags: O_APPEND, sync: true)
    }

    private static func write(_ path: String, _ text: String, mode: mode_t, flags: Int32, sync: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | flags, mode)
        guard fd >= 0 else { throw RadGridError(code: "file.write", message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = fchmod(fd, mode)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw RadGridError(code: "file.write", message: "cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
        if sync && fsync(fd) != 0 { throw RadGridError(code: "file.write", message: "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    /// The file's text, or nil when it cannot be read.
    public static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
