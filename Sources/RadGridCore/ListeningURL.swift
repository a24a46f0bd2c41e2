import Synchronization

/// A server's public base URL, known only once it is bound (with port 0 the port is picked
/// then); read by handlers that write absolute URLs (STOW-RS RetrieveURL, QIDO RetrieveURL).
public final class ListeningURL: Sendable {
    let value: Mutex<String>
    public init(_ value: String) { self.value = Mutex(value) }
    public func set(_ text: String) { value.withLock { $0 = text } }
    public var text: String { value.withLock { $0 } }
}
