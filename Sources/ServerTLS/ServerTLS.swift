import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import RadGridCore

/// HTTPS for the grid's HTTP servers (gateway, portal): a certificate chain and key in PEM
/// files, TLS 1.2 or later, and optionally a CA whose client certificates are required
/// (mutual TLS: each site's edge presents one).
public struct ServerTLS: Sendable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    /// When set, clients must present a certificate chaining to this CA.
    public var clientCAPath: String?

    public init(certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
    }

    /// Loads the files now, so a wrong path or a bad key stops the server at start.
    public func configuration() throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificateChainPath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.minimumTLSVersion = .tlsv12
            if let clientCAPath {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAPath))
                // Client certificates carry no host name to check; the chain is what counts.
                tls.certificateVerification = .noHostnameVerification
            }
            return tls
        } catch {
            throw RadGridError(code: "tls.configuration", message: "cannot load the TLS certificate, key or client CA: \(error)")
        }
    }

    /// The server builder: plain HTTP/1.1, or HTTP/1.1 over TLS.
    public static func server(_ tls: ServerTLS?) throws -> HTTPServerBuilder {
        guard let tls else { return .http1() }
        return try .tls(.http1(), tlsConfiguration: tls.configuration())
    }
}
