import ArgumentParser
import Compliance
import Crypto
import Foundation
import RadGridCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `radgridctl deid IN OUT [--profile …] [--secret-file FILE]`: PS3.15 Annex E de-identification
/// of a file or a directory tree, with pseudonyms keyed by the site secret.
struct DeidCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deid",
        abstract: "De-identify DICOM files (PS3.15 Annex E Basic Profile, optional Full Dates and Patient Characteristics).",
        discussion: """
        IN and OUT are files or directories; a directory is processed recursively and its relative paths are kept. \
        Output files are written 0600 under a temporary name and renamed, so OUT never holds a half-written file. \
        UIDs become 2.25.<HMAC-SHA256(site secret, UID)>, Patient ID and Name HMAC pseudonyms: the same study gets \
        the same new UIDs in every file and every run with the same secret. The secret file (hex) is created with \
        32 random bytes when missing. Exits non-zero when any input cannot be read or written.
        """
    )

    @Argument(help: "A DICOM file or a directory.") var input: String
    @Argument(help: "The output file or directory.") var output: String
    @Option(help: "basic, retain-dates, retain-patient-chars, or retain-dates,retain-patient-chars.") var profile = "basic"
    @Option(name: .customLong("secret-file"), help: "The site secret (hex). Default: $RADGRID_DEID_SECRET_FILE, else ~/.radgrid/deid-secret.")
    var secretFile: String?

    func run() throws {
        // Every step throws DeidentificationError only (typed), so the catches need no casts.
        let deidentifier: Deidentifier
        let jobs: [(source: String, destination: String)]
        do throws(DeidentificationError) {
            let options = try Deidentifier.Options(profile: profile)
            let secret = try DeidSecret.loadOrCreate(secretFile ?? DeidSecret.defaultPath)
            deidentifier = try Deidentifier(secret: secret, options: options)
            jobs = try Self.plan(input: input, output: output)
        } catch {
            throw CommandFailure(error)
        }

        var written = 0
        for job in jobs {
            do throws(DeidentificationError) {
                let bytes = try Self.readFile(job.source)
                try Self.writeAtomically(try deidentifier.deidentifyPart10(bytes), to: job.destination)
                written += 1
            } catch {
                Self.stderr("error [\(error.code)] \(job.source): \(error.message)")
            }
        }
        print("de-identified \(written) of \(jobs.count) file(s) into \(output) (profile \(deidentifier.options))")
        if written < jobs.count { throw ExitCode(1) }
    }

    /// (source, destination) pairs: one for a file, every regular file of a tree for a directory.
    static func plan(input: String, output: String) throws(DeidentificationError) -> [(source: String, destination: String)] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: input, isDirectory: &isDirectory) else {
            throw DeidentificationError(code: DeidentificationError.unreadableCode, message: "\(input): no such file or directory")
        }
        var outIsDirectory: ObjCBool = false
        let outExists = fm.fileExists(atPath: output, isDirectory: &outIsDirectory)
        guard isDirectory.boolValue else {
            let name = (input as NSString).lastPathComponent
            return [(input, outExists && outIsDirectory.boolValue ? (output as NSString).appendingPathComponent(name) : output)]
        }
        if outExists && !outIsDirectory.boolValue {
            throw DeidentificationError(code: DeidentificationError.unwritableCode, message: "\(output) is a file; a directory input needs a directory output")
        }
        // Writing into the tree being read would feed outputs back in as inputs.
        let inRoot = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path
        let outRoot = URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath().path
        if outRoot == inRoot || outRoot.hasPrefix(inRoot.hasSuffix("/") ? inRoot : inRoot + "/") {
            throw DeidentificationError(code: DeidentificationError.unwritableCode, message: "the output directory is inside the input directory")
        }
        var jobs: [(source: String, destination: String)] = []
        for relative in (fm.subpaths(atPath: input) ?? []).sorted() {
            let source = (input as NSString).appendingPathComponent(relative)
            var st = stat()
            guard lstat(source, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            jobs.append((source, (output as NSString).appendingPathComponent(relative)))
        }
        return jobs
    }

    static func readFile(_ path: String) throws(DeidentificationError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DeidentificationError(code: DeidentificationError.unreadableCode, message: "cannot read the file")
        }
        return [UInt8](data)
    }

    /// Writes to a 0600 temporary file beside `path`, syncs it and renames it into place.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(DeidentificationError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw DeidentificationError(code: DeidentificationError.unwritableCode, message: "cannot create \(directory)")
            }
        }
        let name = (path as NSString).lastPathComponent
        let temporary = (directory.isEmpty ? "" : directory + "/") + ".\(name).deid-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        func failure(_ what: String) -> DeidentificationError {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            return DeidentificationError(code: DeidentificationError.unwritableCode, message: "\(what) \(path): \(reason)")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot create a temporary file for") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                let error = failure("cannot write")
                close(fd)
                throw error
            }
            offset += n
        }
        if fsync(fd) != 0 {
            let error = failure("cannot sync")
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw failure("cannot rename the temporary file to") }
    }

    static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// The site secret behind the pseudonyms: hex in a 0600 file, created on first use.
enum DeidSecret {
    static var defaultPath: String {
        if let path = ProcessInfo.processInfo.environment["RADGRID_DEID_SECRET_FILE"], !path.isEmpty { return path }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "."
        return home + "/.radgrid/deid-secret"
    }

    static func loadOrCreate(_ path: String) throws(DeidentificationError) -> [UInt8] {
        if FileManager.default.fileExists(atPath: path) { return try load(path) }
        return try create(path)
    }

    static func load(_ path: String) throws(DeidentificationError) -> [UInt8] {
        guard let text = Files.read(path) else {
            throw DeidentificationError(code: DeidentificationError.secretCode, message: "cannot read the secret file \(path)")
        }
        guard let secret = hexBytes(text.filter { !$0.isWhitespace }), secret.count >= Deidentifier.minimumSecretBytes else {
            throw DeidentificationError(code: DeidentificationError.secretCode,
                                        message: "the secret file \(path) does not hold at least \(Deidentifier.minimumSecretBytes) bytes as hex")
        }
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
            DeidCommand.stderr("warning: the secret file \(path) is readable by others (chmod 600 it)")
        }
        return secret
    }

    static func create(_ path: String) throws(DeidentificationError) -> [UInt8] {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw DeidentificationError(code: DeidentificationError.secretCode, message: "cannot create \(directory)")
            }
        }
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
        let hex = secret.map { String(format: "%02x", $0) }.joined() + "\n"
        // O_EXCL: two runs starting at once must not each write a different secret.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return try load(path) }
            throw DeidentificationError(code: DeidentificationError.secretCode, message: "cannot create the secret file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(hex.utf8)
        let n = bytes.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw DeidentificationError(code: DeidentificationError.secretCode, message: "cannot write the secret file \(path)")
        }
        DeidCommand.stderr("created a new site secret in \(path) (32 random bytes, mode 0600): keep it, the same secret gives the same pseudonyms")
        return secret
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
