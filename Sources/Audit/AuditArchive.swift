import Crypto
import Foundation
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import Zstd
#if canImport(Glibc)
import Glibc
#endif

/// Where a chain's archive ends, kept in Redis beside the chain: the last archived entry's id
/// and hash (the live stream continues from that hash), how many entries and segments the
/// archive holds, and the SHA-256 of the last segment's manifest.
public struct AuditArchiveAnchor: Sendable, Codable, Equatable {
    public var id: String
    public var hash: String
    public var count: Int
    public var segments: Int
    public var manifest: String
}

extension AuditTrail {
    /// `rg:{<chain>}:audit:archived` — the archive anchor (a hash). It shares the chain's hash
    /// tag, so the trim script moves it in the same step as it removes the entries.
    public var archiveKey: String { "\(prefix.value){\(chain)}:audit:archived" }

    /// The chain's archive anchor; nil when nothing of the chain was ever archived.
    public func archiveAnchor() async throws -> AuditArchiveAnchor? {
        AuditArchive.anchor(try await client.send("HGETALL", RedisArgument(archiveKey)))
    }
}

/// What describes one archived segment (`<first id>-<last id>.manifest.json` beside its file).
public struct AuditArchiveManifest: Sendable, Codable, Equatable {
    public static let currentFormat = "radgrid-audit-archive 1"

    public var format: String
    public var prefix: String
    public var chain: String
    /// 1 for a chain's first segment, then consecutive.
    public var sequence: Int
    public var firstID: String
    public var lastID: String
    public var count: Int
    /// The previous hash of the first entry: the last hash of the segment before, or genesis.
    public var previousHash: String
    public var lastHash: String
    /// The segment's file name and the SHA-256 of its (compressed) bytes.
    public var file: String
    public var fileSHA256: String
    /// SHA-256 of the previous segment's manifest file (genesis for the first).
    public var previousManifest: String
    public var archivedMilliseconds: Int64

    enum CodingKeys: String, CodingKey {
        case format, prefix, chain, sequence, firstID = "first_id", lastID = "last_id", count, previousHash = "previous_hash"
        case lastHash = "last_hash", file, fileSHA256 = "file_sha256", previousManifest = "previous_manifest", archivedMilliseconds = "archived_ms"
    }
}

/// What one archive run did.
public struct AuditArchiveResult: Sendable, Codable, Equatable {
    public var beforeMilliseconds: Int64
    /// Chains from which entries left Redis.
    public var chains: Int
    /// Segment files written.
    public var segments: Int
    /// Entries removed from Redis (including those of a segment a stopped run had written).
    public var entries: Int
    /// Chains left in Redis and why (a broken chain, an archive that disagrees with Redis).
    public var problems: [AuditVerification.Problem]

    /// The audit entry's details for the run: counts only.
    public var details: String { "before=\(beforeMilliseconds);chains=\(chains);segments=\(segments);entries=\(entries);problems=\(problems.count)" }
}

/// Moves old audit entries out of Redis into hash-linked, zstd-compressed files, so the record
/// is kept for years without Redis growing.
///
/// `DIR/<chain, escaped>/<first id>-<last id>.ndjson.zst` holds one *segment*: entries as
/// `AuditRecord` JSON lines in chain order; its manifest (`AuditArchiveManifest`) links it to
/// the segment before by hash and by the previous manifest's SHA-256. An edited entry breaks
/// its own hash, an edited file its SHA-256, a removed, replaced or reordered segment the
/// links, and Redis's anchor (`AuditTrail.archiveKey`) ties the archive's end to the live
/// stream. A run writes each segment (temporary file, fsync, rename, directory fsync) before
/// one script removes exactly those entries — only while they still carry the hashes written —
/// and moves the anchor; a run stopped in between is finished by the next one.
public enum AuditArchive {
    public static let defaultSegmentEntries = 10_000
    static let trimScript = RedisScript(AuditLua.archiveTrim)
    static let segmentSuffix = ".ndjson.zst"
    static let manifestSuffix = ".manifest.json"
    /// A segment of 10 000 entries is a few MB; anything near this is not one of ours.
    static let maxSegmentBytes = 1 << 30
    /// Written once, kept for 15 years: worth a higher level than the default.
    static let compressionLevel = 12

    // MARK: Archiving

    /// Archives every registered chain's entries recorded (by stream id, Redis's clock) before
    /// `beforeMilliseconds`, in segments of at most `segmentEntries` entries. Holds the
    /// directory's lock, so two runs never interleave.
    public static func archive(client: RedisClient, prefix: KeyPrefix, directory: String, beforeMilliseconds: Int64,
                               segmentEntries: Int = defaultSegmentEntries, logger: Logger = Logger(label: "radgrid.audit")) async throws -> AuditArchiveResult {
        try await archive(client: client, prefix: prefix, directory: directory, beforeMilliseconds: beforeMilliseconds,
                          segmentEntries: segmentEntries, logger: logger, stopAt: nil)
    }

    /// Where a test stops a run, as a crash would.
    enum StopPoint: Sendable { case afterSegmentFile, afterManifest }

    static func archive(client: RedisClient, prefix: KeyPrefix, directory: String, beforeMilliseconds: Int64,
                        segmentEntries: Int = defaultSegmentEntries, logger: Logger = Logger(label: "radgrid.audit"), stopAt: StopPoint?) async throws -> AuditArchiveResult {
        guard segmentEntries > 0 else { throw RadGridError(code: "audit.archiveArgument", message: "segments must hold at least one entry") }
        try Files.makeDirectories(directory, mode: 0o700)
        let lock: DirectoryLock
        do {
            lock = try await DirectoryLock.acquire(directory)
        } catch {
            throw RadGridError(code: "audit.archiveBusy", message: "cannot lock \(directory): another archive run holds it, or it is not writable")
        }
        defer { lock.release() }
        var result = AuditArchiveResult(beforeMilliseconds: beforeMilliseconds, chains: 0, segments: 0, entries: 0, problems: [])
        for chain in try await AuditTrail.chains(client: client, prefix: prefix) {
            let trail = AuditTrail(client: client, prefix: prefix, chain: chain)
            var progress = Progress()
            do {
                try await archive(trail, directory: directory, before: beforeMilliseconds, segmentEntries: segmentEntries, stopAt: stopAt, progress: &progress)
            } catch let problem as ChainProblem {
                result.problems.append(.init(chain: chain, entryID: problem.entryID, reason: problem.reason))
                logger.error("audit chain not archived", metadata: ["chain": "\(chain)", "reason": "\(problem.reason)"])
            }
            if progress.entries > 0 { result.chains += 1 }
            result.segments += progress.segments
            result.entries += progress.entries
        }
        logger.info("audit archive run", metadata: ["before": "\(beforeMilliseconds)", "chains": "\(result.chains)", "segments": "\(result.segments)",
                                                   "entries": "\(result.entries)", "problems": "\(result.problems.count)"])
        return result
    }

    struct Progress { var segments = 0, entries = 0 }

    /// Why one chain was left in Redis; the run goes on with the next chain.
    struct ChainProblem: Error {
        let entryID: String?
        let reason: String
    }

    static func archive(_ trail: AuditTrail, directory: String, before: Int64, segmentEntries: Int, stopAt: StopPoint?,
                        progress: inout Progress) async throws {
        let chainDirectory = chainDirectory(directory, chain: trail.chain)
        let end = RedisArgument("(\(max(0, before))-0")
        func page() async throws -> [AuditRecord] {
            let reply = try await trail.client.send("XRANGE", RedisArgument(trail.logKey), "-", end, "COUNT", RedisArgument(segmentEntries))
            return try (reply.array ?? []).map { item in
                guard let record = AuditTrail.record(item, chain: trail.chain) else {
                    throw ChainProblem(entryID: item.array?.first?.string, reason: "an entry is not an audit entry (see audit verify): the chain stays in Redis")
                }
                return record
            }
        }
        var records = try await page()
        // Most chains have nothing old enough: no directory listing for them.
        guard !records.isEmpty else { return }
        let listing = listing(chainDirectory)
        if let name = listing.unreadable.first {
            throw ChainProblem(entryID: nil, reason: "the archive's manifest \(name) cannot be read: the chain stays in Redis")
        }
        var anchor = try await trail.archiveAnchor()
        let last = listing.segments.last
        if let last, anchor?.id != last.manifest.lastID {
            // The files are ahead of Redis: a run stopped after writing this segment. Finish it,
            // provided Redis's anchor is where that run found it and the segment checks out.
            let previous = listing.segments.dropLast().last
            guard anchor?.id == previous?.manifest.lastID else {
                throw ChainProblem(entryID: anchor?.id, reason: "Redis's archive anchor (\(anchor?.id ?? "none")) is not the archive's last entry (\(last.manifest.lastID)): wrong directory, or segments or the anchor were removed")
            }
            let checked = check(last, in: chainDirectory, chain: trail.chain, previousHash: previous?.manifest.lastHash ?? AuditTrail.genesisHash,
                                previousID: previous?.manifest.lastID)
            guard let segmentRecords = checked.records, checked.problems.isEmpty else {
                throw ChainProblem(entryID: nil, reason: "the archive's last segment (\(last.manifest.file)) does not check out (see audit verify): the chain stays in Redis")
            }
            try await trim(trail, expectedAnchor: anchor?.id ?? "", records: segmentRecords, manifestSHA256: last.sha256, sequence: last.manifest.sequence)
            progress.entries += segmentRecords.count
            anchor = try await trail.archiveAnchor()
            records = try await page()
        } else if last == nil, let anchor {
            throw ChainProblem(entryID: anchor.id, reason: "Redis's archive anchor is at \(anchor.id) but \(directory) holds no segment of this chain: wrong directory, or the archive was removed")
        }
        if let last, let anchor, anchor.hash != last.manifest.lastHash || anchor.manifest != last.sha256 {
            throw ChainProblem(entryID: anchor.id, reason: "Redis's archive anchor does not match the archive's last segment (\(last.manifest.file)): one of them was changed")
        }
        removeLeftovers(listing, in: chainDirectory, after: last?.manifest.lastID)

        var previousHash = last?.manifest.lastHash ?? AuditTrail.genesisHash
        var previousManifest = last?.sha256 ?? AuditTrail.genesisHash
        var sequence = last?.manifest.sequence ?? 0
        var anchorID = anchor?.id ?? ""
        while !records.isEmpty {
            // Only an intact stretch leaves Redis; a broken one stays where verify reports it.
            var expected = previousHash
            for record in records {
                guard record.previousHash == expected, AuditTrail.hash(record) == record.hash else {
                    throw ChainProblem(entryID: record.id, reason: "the chain is broken at this entry (see audit verify): it and what follows stay in Redis")
                }
                expected = record.hash
            }
            sequence += 1
            let written = try writeSegment(records, trail: trail, sequence: sequence, previousHash: previousHash, previousManifest: previousManifest,
                                           in: chainDirectory, stopAt: stopAt)
            try await trim(trail, expectedAnchor: anchorID, records: records, manifestSHA256: written.sha256, sequence: sequence)
            progress.segments += 1
            progress.entries += records.count
            previousHash = written.manifest.lastHash
            previousManifest = written.sha256
            anchorID = written.manifest.lastID
            guard records.count == segmentEntries else { break }
            records = try await page()
        }
    }

    /// Removes the segment's entries from the stream (and their study index members) and moves
    /// the anchor, in one script that refuses if Redis no longer holds exactly those entries.
    static func trim(_ trail: AuditTrail, expectedAnchor: String, records: [AuditRecord], manifestSHA256: String, sequence: Int) async throws {
        var keys = [RedisArgument(trail.logKey), RedisArgument(trail.archiveKey)]
        var studyIndexes: [String: Int] = [:]
        var arguments = [RedisArgument(expectedAnchor), RedisArgument(manifestSHA256), RedisArgument(sequence)]
        arguments.reserveCapacity(3 + records.count * 3)
        for record in records {
            var index = 0
            if !record.study.isEmpty {
                if let known = studyIndexes[record.study] {
                    index = known
                } else {
                    keys.append(RedisArgument(trail.studyKey(record.study)))
                    index = keys.count - 2
                    studyIndexes[record.study] = index
                }
            }
            arguments += [RedisArgument(record.id), RedisArgument(record.hash), RedisArgument(index)]
        }
        let refused: RedisError
        do {
            _ = try await trail.client.evalScript(trimScript, keys: keys, arguments: arguments)
            return
        } catch {
            refused = error
        }
        guard refused.isServerError("MISMATCH") || refused.isServerError("ANCHOR") else { throw refused }
        throw ChainProblem(entryID: records.last?.id, reason: "Redis no longer holds the segment as it was archived (\(refused.message)): nothing was removed; the segment stays on disk")
    }

    // MARK: Files

    struct Segment {
        var manifest: AuditArchiveManifest
        /// SHA-256 of the manifest file's bytes.
        var sha256: String
        var manifestFile: String
    }

    struct Listing {
        /// In sequence order.
        var segments: [Segment] = []
        var unreadable: [String] = []
        var segmentFiles: [String] = []
        var temporaryFiles: [String] = []
    }

    static func listing(_ chainDirectory: String) -> Listing {
        var listing = Listing()
        let decoder = JSONDecoder()
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: chainDirectory)) ?? []).sorted() {
            if name.hasSuffix(manifestSuffix) {
                guard let data = FileManager.default.contents(atPath: chainDirectory + "/" + name),
                      let manifest = try? decoder.decode(AuditArchiveManifest.self, from: data) else {
                    listing.unreadable.append(name)
                    continue
                }
                listing.segments.append(Segment(manifest: manifest, sha256: hex(Array(data)), manifestFile: name))
            } else if name.hasSuffix(segmentSuffix) {
                listing.segmentFiles.append(name)
            } else if name.hasSuffix(".tmp") {
                listing.temporaryFiles.append(name)
            }
        }
        listing.segments.sort { ($0.manifest.sequence, $0.manifestFile) < ($1.manifest.sequence, $1.manifestFile) }
        return listing
    }

    /// Deletes what a stopped run left behind: temporary files, and segment files that no
    /// manifest describes and that begin after the archive's last entry (never committed).
    static func removeLeftovers(_ listing: Listing, in chainDirectory: String, after lastID: String?) {
        for name in listing.temporaryFiles { unlink(chainDirectory + "/" + name) }
        let described = Set(listing.segments.map(\.manifest.file))
        for name in listing.segmentFiles where !described.contains(name) {
            let parts = name.dropLast(segmentSuffix.count).split(separator: "-")
            guard parts.count == 4 else { continue }
            let first = "\(parts[0])-\(parts[1])"
            if let lastID, !isAfter(first, lastID) { continue }
            unlink(chainDirectory + "/" + name)
        }
    }

    struct Written {
        let manifest: AuditArchiveManifest
        let sha256: String
    }

    static func writeSegment(_ records: [AuditRecord], trail: AuditTrail, sequence: Int, previousHash: String, previousManifest: String,
                             in chainDirectory: String, stopAt: StopPoint?) throws -> Written {
        let first = records[0], last = records[records.count - 1]
        let base = "\(first.id)-\(last.id)"
        let compressed = try encodeSegment(records)
        let manifest = AuditArchiveManifest(format: AuditArchiveManifest.currentFormat, prefix: trail.prefix.value, chain: trail.chain, sequence: sequence,
                                            firstID: first.id, lastID: last.id, count: records.count, previousHash: previousHash, lastHash: last.hash,
                                            file: base + segmentSuffix, fileSHA256: hex(compressed), previousManifest: previousManifest,
                                            archivedMilliseconds: WallClock.nowMilliseconds())
        let manifestBytes = try manifestData(manifest)
        try makeChainDirectory(chainDirectory)
        // The segment is durable before its manifest names it, and both before Redis trims.
        try writeDurably(chainDirectory + "/" + manifest.file, compressed)
        try syncDirectory(chainDirectory)
        if stopAt == .afterSegmentFile { throw RadGridError(code: "audit.archiveStopped", message: "stopped after the segment file (test)") }
        try writeDurably(chainDirectory + "/" + base + manifestSuffix, manifestBytes)
        try syncDirectory(chainDirectory)
        if stopAt == .afterManifest { throw RadGridError(code: "audit.archiveStopped", message: "stopped after the manifest (test)") }
        return Written(manifest: manifest, sha256: hex(manifestBytes))
    }

    static func manifestData(_ manifest: AuditArchiveManifest) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(manifest)) + [0x0A]
    }

    /// Records as JSON lines, zstd-compressed.
    static func encodeSegment(_ records: [AuditRecord]) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines: [UInt8] = []
        for record in records {
            lines += try encoder.encode(record)
            lines.append(0x0A)
        }
        return try Zstd.compress(lines, level: compressionLevel)
    }

    static func decodeSegment(_ compressed: [UInt8]) throws -> [AuditRecord] {
        let lines = try Zstd.decompress(compressed, maxOutputSize: maxSegmentBytes)
        let decoder = JSONDecoder()
        return try lines.split(separator: 0x0A).map { try decoder.decode(AuditRecord.self, from: Data($0)) }
    }

    /// The chain's directory: its name with every byte but letters, digits, `-`, `_` and a
    /// non-leading `.` percent-encoded (`s:1.2.3` → `s%3A1.2.3`).
    static func chainDirectory(_ directory: String, chain: String) -> String {
        directory + "/" + escapedName(chain)
    }

    static func escapedName(_ chain: String) -> String {
        var name = ""
        for byte in chain.utf8 {
            let plain = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == 0x2D || byte == 0x5F || (byte == 0x2E && !name.isEmpty)
            name += plain ? String(UnicodeScalar(byte)) : "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
        }
        return name
    }

    static func makeChainDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else {
            if errno == EEXIST { return }
            throw ioError("cannot create \(path)")
        }
        // The new directory's entry must survive a crash as much as the files in it.
        try syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
    }

    /// Writes a temporary file, fsyncs it and renames it into place (the caller syncs the directory).
    static func writeDurably(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ioError("cannot create \(temporary)") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let error = ioError("cannot write \(temporary)")
                close(fd)
                unlink(temporary)
                throw error
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let error = ioError("cannot sync \(temporary)")
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw ioError("cannot rename \(temporary)") }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path.isEmpty ? "/" : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("cannot open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ioError("cannot sync \(path)") }
    }

    static func ioError(_ message: String) -> RadGridError {
        RadGridError(code: "audit.archiveIO", message: "\(message): \(String(cString: strerror(errno)))")
    }

    static func hex(_ bytes: [UInt8]) -> String { AuditCheckpoints.hex(SHA256.hash(data: bytes)) }

    // MARK: Reading and verifying

    /// An archived entry of `chain` by id (what `AuditCheckpoints.verify` checks a signed entry
    /// against once it left Redis); nil when no readable segment holds it.
    public static func record(directory: String, chain: String, id: String) -> AuditRecord? {
        let chainDirectory = chainDirectory(directory, chain: chain)
        for segment in listing(chainDirectory).segments where !isAfter(segment.manifest.firstID, id) && !isAfter(id, segment.manifest.lastID) {
            guard let data = FileManager.default.contents(atPath: chainDirectory + "/" + segment.manifest.file),
                  let records = try? decodeSegment(Array(data)) else { continue }
            if let record = records.first(where: { $0.id == id && $0.chain == chain }) { return record }
        }
        return nil
    }

    /// Walks every chain's segments (each file's SHA-256, every entry's hash and link, the links
    /// between manifests) and checks that Redis continues each archive: its anchor is the
    /// archive's last entry and the first live entry (or the head) follows from it. `chains`
    /// and `entries` count what the archive holds.
    public static func verify(directory: String, client: RedisClient, prefix: KeyPrefix) async throws -> AuditVerification {
        var result = AuditVerification(chains: 0, entries: 0, problems: [])
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            result.problems.append(.init(chain: "archive", entryID: nil, reason: "no audit archive at \(directory)"))
            return result
        }
        // Wait for a run in progress (its files are ahead of Redis until it trims); a reader
        // that cannot take the lock checks anyway.
        let lock = try? await DirectoryLock.acquire(directory)
        defer { lock?.release() }
        let registered = try await AuditTrail.chains(client: client, prefix: prefix)
        let registeredSet = Set(registered)
        var archived = Set<String>()
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() where !name.hasPrefix(".") {
            let path = directory + "/" + name
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let listing = listing(path)
            if listing.segments.isEmpty && listing.segmentFiles.isEmpty && listing.unreadable.isEmpty { continue }
            let chain = listing.segments.first?.manifest.chain ?? name.removingPercentEncoding ?? name
            guard !chain.isEmpty, !chain.contains("{"), !chain.contains("}") else {
                result.problems.append(.init(chain: name, entryID: nil, reason: "the archive directory \(name) names no valid chain"))
                continue
            }
            archived.insert(chain)
            result.chains += 1
            var entries = 0
            let problems = try await verify(AuditTrail(client: client, prefix: prefix, chain: chain), listing: listing, in: path, name: name,
                                            registered: registeredSet.contains(chain), entries: &entries)
            result.entries += entries
            result.problems += problems
        }
        // Chains Redis says were archived must have their archive here.
        let unarchived = registered.filter { !archived.contains($0) }
        var start = 0
        while start < unarchived.count {
            let slice = Array(unarchived[start..<min(unarchived.count, start + 512)])
            let replies = try await client.pipeline(slice.map { RedisCommand("HGETALL", RedisArgument(AuditTrail(client: client, prefix: prefix, chain: $0).archiveKey)) })
            for (chain, reply) in zip(slice, replies) {
                if let anchor = anchor(reply) {
                    result.problems.append(.init(chain: chain, entryID: anchor.id, reason: "Redis says \(anchor.count) entries up to \(anchor.id) were archived, but \(directory) holds no segment of this chain"))
                }
            }
            start += 512
        }
        return result
    }

    static func verify(_ trail: AuditTrail, listing: Listing, in chainDirectory: String, name: String, registered: Bool,
                       entries: inout Int) async throws -> [AuditVerification.Problem] {
        let chain = trail.chain
        var problems: [AuditVerification.Problem] = []
        func problem(_ id: String?, _ reason: String) { problems.append(.init(chain: chain, entryID: id, reason: reason)) }
        if name != escapedName(chain) {
            problem(nil, "the archive of this chain is in another chain's directory (\(name))")
        }
        if !registered { problem(nil, "the chain is archived but no longer registered in Redis") }
        for name in listing.unreadable { problem(nil, "the manifest \(name) cannot be read") }

        var previousHash = AuditTrail.genesisHash
        var previousManifest = AuditTrail.genesisHash
        var previousID: String?
        var total = 0
        var expectedSequence = 1
        for segment in listing.segments {
            let manifest = segment.manifest
            if manifest.sequence != expectedSequence {
                problem(manifest.firstID, "segment \(manifest.sequence) follows segment \(expectedSequence - 1): a segment was removed or reordered")
            }
            if manifest.previousManifest != previousManifest {
                problem(manifest.firstID, "segment \(manifest.sequence) does not link to the manifest before it: a segment was removed, replaced or reordered")
            }
            if manifest.prefix != trail.prefix.value {
                problem(manifest.firstID, "segment \(manifest.sequence) was archived from prefix \(manifest.prefix)")
            }
            let checked = check(segment, in: chainDirectory, chain: chain, previousHash: previousHash, previousID: previousID)
            problems += checked.problems
            entries += checked.records?.count ?? 0
            previousHash = manifest.lastHash
            previousManifest = segment.sha256
            previousID = manifest.lastID
            expectedSequence = manifest.sequence + 1
            total += manifest.count
        }
        let described = Set(listing.segments.map(\.manifest.file))
        for name in listing.segmentFiles where !described.contains(name) {
            problem(nil, "the segment file \(name) has no manifest: an archive run stopped (run it again) or the manifest was removed")
        }
        guard let last = listing.segments.last else { return problems }

        // Redis must continue the archive where it ends.
        if let anchor = try await trail.archiveAnchor() {
            if anchor.id != last.manifest.lastID || anchor.hash != last.manifest.lastHash {
                problem(anchor.id, "Redis's archive anchor (\(anchor.id)) is not the archive's last entry (\(last.manifest.lastID)): segments were removed or added, the anchor was changed, or an archive run stopped (run it again)")
            } else if anchor.manifest != last.sha256 {
                problem(anchor.id, "Redis's archive anchor names another last manifest: the manifest was replaced")
            }
            if anchor.count != total {
                problem(anchor.id, "Redis's archive anchor counts \(anchor.count) archived entries, the archive \(total)")
            }
        } else {
            problem(last.manifest.lastID, "Redis has no archive anchor for this chain: it was deleted, or the first archive run stopped (run it again)")
        }
        let first = try await trail.client.send("XRANGE", RedisArgument(trail.logKey), "-", "+", "COUNT", "1").array?.first
        if let first {
            guard let record = AuditTrail.record(first, chain: chain) else {
                problem(first.array?.first?.string, "the first entry in Redis is not an audit entry")
                return problems
            }
            if record.previousHash != last.manifest.lastHash || !isAfter(record.id, last.manifest.lastID) {
                problem(record.id, "the first entry in Redis does not continue from the archive's last entry (\(last.manifest.lastID))")
            }
        } else {
            let head = try await trail.client.send("GET", RedisArgument(trail.headKey)).string
            if head != last.manifest.lastHash {
                problem(nil, "the chain's head is not the archive's last entry, and Redis holds no entry after it")
            }
        }
        return problems
    }

    /// Reads one segment and checks it against its manifest and the chain before it: the records
    /// (nil when unreadable) and every problem found.
    static func check(_ segment: Segment, in chainDirectory: String, chain: String, previousHash: String,
                      previousID: String?) -> (records: [AuditRecord]?, problems: [AuditVerification.Problem]) {
        let manifest = segment.manifest
        var problems: [AuditVerification.Problem] = []
        func problem(_ id: String?, _ reason: String) {
            problems.append(.init(chain: chain, entryID: id, reason: "segment \(manifest.sequence) (\(manifest.file)): \(reason)"))
        }
        let base = "\(manifest.firstID)-\(manifest.lastID)"
        if manifest.file != base + segmentSuffix || segment.manifestFile != base + manifestSuffix {
            problem(nil, "its files are not named after its first and last entry: they were renamed or swapped")
        }
        if manifest.chain != chain { problem(nil, "its manifest names chain \(manifest.chain)") }
        if manifest.format != AuditArchiveManifest.currentFormat { problem(nil, "unknown format \(manifest.format)") }
        if manifest.previousHash != previousHash {
            problem(manifest.firstID, "it does not continue from the segment before it: a segment was removed, replaced or reordered")
        }
        guard let data = FileManager.default.contents(atPath: chainDirectory + "/" + manifest.file) else {
            problem(nil, "its file is missing")
            return (nil, problems)
        }
        let bytes = Array(data)
        if hex(bytes) != manifest.fileSHA256 {
            problem(nil, "the file's SHA-256 differs from its manifest: the file was edited or replaced")
        }
        let records: [AuditRecord]
        do {
            records = try decodeSegment(bytes)
        } catch {
            problem(nil, "the file cannot be read (\(error))")
            return (nil, problems)
        }
        if records.count != manifest.count { problem(nil, "it holds \(records.count) entries, its manifest says \(manifest.count)") }
        if records.first?.id != manifest.firstID || records.last?.id != manifest.lastID {
            problem(records.first?.id, "its entries do not span \(manifest.firstID) to \(manifest.lastID): the file was replaced")
        }
        var expected = previousHash
        var lastID = previousID
        for record in records {
            if record.chain != chain { problem(record.id, "the entry belongs to chain \(record.chain)") }
            if let lastID, !isAfter(record.id, lastID) { problem(record.id, "entries are out of order") }
            if record.previousHash != expected {
                problem(record.id, "link broken: an entry before this one was deleted, inserted or edited")
            }
            if AuditTrail.hash(record) != record.hash {
                problem(record.id, "content does not match its hash: the entry was edited")
            }
            expected = record.hash
            lastID = record.id
        }
        if let last = records.last, last.hash != manifest.lastHash { problem(last.id, "the last entry's hash differs from the manifest's") }
        return (records, problems)
    }

    static func anchor(_ reply: RedisValue) -> AuditArchiveAnchor? {
        guard let fields = reply.fieldMap, let id = fields["id"]?.string, let hash = fields["hash"]?.string else { return nil }
        return AuditArchiveAnchor(id: id, hash: hash, count: Int(fields["count"]?.int ?? 0), segments: Int(fields["segments"]?.int ?? 0),
                                  manifest: fields["manifest"]?.string ?? "")
    }

    /// Whether stream id `a` comes after `b` (`ms-seq`, compared as numbers).
    static func isAfter(_ a: String, _ b: String) -> Bool {
        func parse(_ id: String) -> (UInt64, UInt64)? {
            let parts = id.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
            return (ms, seq)
        }
        guard let x = parse(a), let y = parse(b) else { return a > b }
        return x > y
    }
}

/// Archives, at start and then once a day, the entries older than `afterDays` days
/// (`radgrid auditor --archive DIR --archive-after-days N`).
public struct AuditArchiver: Service {
    let client: RedisClient
    let prefix: KeyPrefix
    let directory: String
    let afterDays: Int
    let interval: Duration
    let logger: Logger

    public init(client: RedisClient, prefix: KeyPrefix, directory: String, afterDays: Int, interval: Duration = .seconds(86_400), logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.directory = directory
        self.afterDays = afterDays
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await archiveOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    func archiveOnce() async {
        let before = WallClock.nowMilliseconds() - Int64(afterDays) * 86_400_000
        do {
            let result = try await AuditArchive.archive(client: client, prefix: prefix, directory: directory, beforeMilliseconds: before, logger: logger)
            if result.entries > 0 {
                // Entries leaving Redis is itself on the record, as an operator's archive run is.
                try await AuditTrail(client: client, prefix: prefix, chain: "admin")
                    .append(actor: AuditActor(.system, "auditor"), action: "admin.audit.archived", details: result.details)
            }
        } catch {
            logger.error("audit archive run failed", metadata: ["error": "\(error)"])
        }
    }
}
