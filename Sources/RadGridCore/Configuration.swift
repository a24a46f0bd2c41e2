#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a command or daemon finds Redis: `--redis URL`, else `REDIS_URL`, else localhost.
public enum RedisEndpoint {
    public static let defaultURL = "redis://127.0.0.1:6379"
    public static let environmentVariable = "REDIS_URL"

    /// A file holding the URL (its credentials stay out of the environment too).
    public static let fileVariable = "REDIS_URL_FILE"
    /// The name of the credential systemd's `LoadCredential=` hands a unit (Ops/systemd).
    public static let credentialName = "redis-url"

    /// `--redis`, else `REDIS_URL`, else the file named by `REDIS_URL_FILE`, else the
    /// `redis-url` credential systemd passed (`$CREDENTIALS_DIRECTORY/redis-url`), else the default.
    public static func resolve(option: String?, environment: [String: String] = ProcessEnvironment.current) -> String {
        if let option, !option.isEmpty { return option }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty { return fromEnvironment }
        var files: [String] = []
        if let path = environment[fileVariable], !path.isEmpty { files.append(path) }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty { files.append(directory + "/" + credentialName) }
        for path in files {
            if let text = Files.read(path) {
                let url = String(text.filter { !$0.isWhitespace })
                if !url.isEmpty { return url }
            }
        }
        return defaultURL
    }
}

/// The process environment as a dictionary, without pulling Foundation into every module.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    public static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }
}

/// Every Redis key RadGrid writes starts with this prefix (configurable per deployment),
/// so several grids or test runs can share one server.
public struct KeyPrefix: Sendable, Hashable, CustomStringConvertible {
    public static let `default` = KeyPrefix("rg:")
    public let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { value }

    /// `prefix + parts joined by ':'`.
    public func key(_ parts: String...) -> String { value + parts.joined(separator: ":") }
}
