import Foundation
import GridContract
import RadGridCore
import RedisClient

/// A site's DICOM network registration: which calling AE titles are it and from where, and the
/// PACS its results go back to. Stored as JSON per AE title and per site (radgridctl sites dicom).
public struct SiteNetwork: Sendable {
    /// One calling AE title of a site.
    public struct Caller: Codable, Sendable, Equatable {
        public var site: String
        /// Source addresses it may call from: IPv4/IPv6 addresses or IPv4 CIDR blocks; `*` any.
        public var addresses: [String]
        /// Associations must carry a user identity (username = site, passcode = a site token).
        public var requireIdentity: Bool
        /// Concurrent associations this site may hold (0: the server's per-site default).
        public var maxAssociations: Int
        public init(site: String, addresses: [String], requireIdentity: Bool = false, maxAssociations: Int = 0) {
            self.site = site
            self.addresses = addresses
            self.requireIdentity = requireIdentity
            self.maxAssociations = maxAssociations
        }

        /// True when `peer` is one of `addresses`.
        public func allows(peer: String) -> Bool {
            addresses.contains { pattern in
                if pattern == "*" || pattern == peer { return true }
                guard let slash = pattern.firstIndex(of: "/"), let bits = Int(pattern[pattern.index(after: slash)...]), (0...32).contains(bits),
                      let network = Self.ipv4(String(pattern[..<slash])), let address = Self.ipv4(peer) else { return false }
                let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
                return network & mask == address & mask
            }
        }

        static func ipv4(_ text: String) -> UInt32? {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard let octet = UInt8(part) else { return nil }
                value = value << 8 | UInt32(octet)
            }
            return value
        }
    }

    /// Where a site's results go: its PACS (C-STORE SCP) and which results.
    public struct Destination: Codable, Sendable, Equatable {
        public var aeTitle: String
        public var host: String
        public var port: Int
        /// `report` (the signed report as Basic Text SR) and/or `screening` (the AI pre-screen as SR).
        public var send: [ResultKind]
        public init(aeTitle: String, host: String, port: Int, send: [ResultKind] = ResultKind.allCases) {
            self.aeTitle = aeTitle
            self.host = host
            self.port = port
            self.send = send
        }
    }

    public let client: RedisClient
    let keys: GridKeys

    public init(client: RedisClient, prefix: KeyPrefix = .default) {
        self.client = client
        self.keys = GridKeys(prefix: prefix)
    }

    /// AE titles: 1–16 characters of the default repertoire, no backslash, not all spaces.
    public static func validate(aeTitle: String) throws(RadGridError) {
        guard !aeTitle.isEmpty, aeTitle.utf8.count <= 16, aeTitle.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != 0x5c }),
              aeTitle.first != " ", aeTitle.last != " " else {
            throw RadGridError(code: "dimse.badAETitle", message: "an AE title is 1-16 printable ASCII characters, no backslash, no leading or trailing space")
        }
    }

    public func register(aeTitle: String, _ caller: Caller) async throws {
        try Self.validate(aeTitle: aeTitle)
        guard !caller.addresses.isEmpty else { throw RadGridError(code: "dimse.noAddress", message: "name at least one source address (--from), or * for any") }
        let data = try JSONEncoder().encode(caller)
        try await client.send("HSET", RedisArgument(keys.dicomCallers), RedisArgument(aeTitle), RedisArgument(Array(data)))
    }

    @discardableResult
    public func unregister(aeTitle: String) async throws -> Bool {
        (try await client.send("HDEL", RedisArgument(keys.dicomCallers), RedisArgument(aeTitle)).int ?? 0) > 0
    }

    public func caller(aeTitle: String) async throws -> Caller? {
        guard let bytes = try await client.send("HGET", RedisArgument(keys.dicomCallers), RedisArgument(aeTitle)).bytes else { return nil }
        return try? JSONDecoder().decode(Caller.self, from: Data(bytes))
    }

    public func callers() async throws -> [String: Caller] {
        let all = try await client.send("HGETALL", RedisArgument(keys.dicomCallers)).fieldMap ?? [:]
        return all.compactMapValues { value in value.bytes.flatMap { try? JSONDecoder().decode(Caller.self, from: Data($0)) } }
    }

    public func setDestination(site: SiteID, _ destination: Destination?) async throws {
        guard let destination else {
            try await client.send("HDEL", RedisArgument(keys.dicomDestinations), RedisArgument(site.rawValue))
            return
        }
        try Self.validate(aeTitle: destination.aeTitle)
        guard (1...65535).contains(destination.port), !destination.host.isEmpty else {
            throw RadGridError(code: "dimse.badDestination", message: "a PACS needs a host and a port from 1 to 65535")
        }
        let data = try JSONEncoder().encode(destination)
        try await client.send("HSET", RedisArgument(keys.dicomDestinations), RedisArgument(site.rawValue), RedisArgument(Array(data)))
    }

    public func destination(site: SiteID) async throws -> Destination? {
        guard let bytes = try await client.send("HGET", RedisArgument(keys.dicomDestinations), RedisArgument(site.rawValue)).bytes else { return nil }
        return try? JSONDecoder().decode(Destination.self, from: Data(bytes))
    }

    public func destinations() async throws -> [String: Destination] {
        let all = try await client.send("HGETALL", RedisArgument(keys.dicomDestinations)).fieldMap ?? [:]
        return all.compactMapValues { value in value.bytes.flatMap { try? JSONDecoder().decode(Destination.self, from: Data($0)) } }
    }
}

/// A result the grid sends back to a site's PACS.
public enum ResultKind: String, Codable, Sendable, CaseIterable {
    case report
    case screening
}
