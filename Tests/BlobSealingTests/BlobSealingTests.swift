import BlobSealing
import Foundation
import Testing

@Suite("Blob sealing: AES-GCM per site, key file, rotation")
struct BlobSealingTests {
    static func key(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }
    let plaintext: [UInt8] = Array("(0010,0010) DOE^JANE (0010,0020) PID-123456 and some pixels".utf8)

    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rg-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return dir
    }

    @Test func roundTrip() throws {
        let keyring = try BlobKeyring(current: "k1", keys: ["k1": Self.key(1)])
        let sealed = try keyring.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        #expect(BlobKeyring.isSealed(sealed))
        #expect(!BlobKeyring.isSealed(plaintext))
        #expect(Array(sealed.prefix(4)) == Array("RGB1".utf8))
        // magic, id length, id, nonce, ciphertext, tag
        #expect(sealed.count == 4 + 1 + 2 + 12 + plaintext.count + 16)
        #expect(sealed[4] == 2 && Array(sealed[5..<7]) == Array("k1".utf8))
        #expect(Data(sealed).range(of: Data("DOE^JANE".utf8)) == nil)
        #expect(try keyring.open(sealed, site: "H001", study: "1.2.3", sop: "1.2.3.4") == plaintext)
        // A fresh nonce each time.
        #expect(try keyring.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4") != sealed)
        #expect(try keyring.open(try keyring.seal([], site: "H001", study: "1.2.3", sop: "1.2.3.4"), site: "H001", study: "1.2.3", sop: "1.2.3.4") == [])
    }

    @Test func anotherSiteStudyOrInstanceDoesNotOpen() throws {
        let keyring = try BlobKeyring(current: "k1", keys: ["k1": Self.key(1)])
        let sealed = try keyring.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        for (site, study, sop) in [("H002", "1.2.3", "1.2.3.4"), ("H001", "1.2.4", "1.2.3.4"), ("H001", "1.2.3", "1.2.3.5"),
                                   ("H001\n1.2.3", "", "1.2.3.4")] {
            let error = #expect(throws: BlobSealingError.self) { try keyring.open(sealed, site: site, study: study, sop: sop) }
            #expect(error?.code == "blob.authentication")
        }
    }

    @Test func everyFlippedBitIsCaught() throws {
        let keyring = try BlobKeyring(current: "k1", keys: ["k1": Self.key(1)])
        let sealed = try keyring.seal(Array(plaintext.prefix(20)), site: "H001", study: "1.2.3", sop: "1.2.3.4")
        for index in sealed.indices {
            for bit in 0..<8 {
                var altered = sealed
                altered[index] ^= 1 << bit
                #expect(throws: BlobSealingError.self, "byte \(index) bit \(bit)") {
                    try keyring.open(altered, site: "H001", study: "1.2.3", sop: "1.2.3.4")
                }
            }
        }
        // Truncated anywhere.
        for length in 0..<sealed.count {
            #expect(throws: BlobSealingError.self) { try keyring.open(Array(sealed.prefix(length)), site: "H001", study: "1.2.3", sop: "1.2.3.4") }
        }
    }

    @Test func unknownKeyIDAndMalformedBlobs() throws {
        let first = try BlobKeyring(current: "k1", keys: ["k1": Self.key(1)])
        let other = try BlobKeyring(current: "k9", keys: ["k9": Self.key(9)])
        let sealed = try first.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        let unknown = #expect(throws: BlobSealingError.self) { try other.open(sealed, site: "H001", study: "1.2.3", sop: "1.2.3.4") }
        #expect(unknown?.code == "blob.unknownKey")
        #expect(unknown?.message.contains("k1") == true)
        // The same id with another key: the tag does not verify.
        let impostor = try BlobKeyring(current: "k1", keys: ["k1": Self.key(2)])
        let forged = #expect(throws: BlobSealingError.self) { try impostor.open(sealed, site: "H001", study: "1.2.3", sop: "1.2.3.4") }
        #expect(forged?.code == "blob.authentication")
        let plain = #expect(throws: BlobSealingError.self) { try first.open(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4") }
        #expect(plain?.code == "blob.malformed")
        let short = #expect(throws: BlobSealingError.self) { try first.open(Array("RGB1".utf8) + [2, 0x6B, 0x31], site: "H001", study: "1.2.3", sop: "1.2.3.4") }
        #expect(short?.code == "blob.malformed")
        // No message carries key bytes or the plaintext.
        for error in [unknown, forged, plain, short].compactMap({ $0 }) {
            #expect(!error.message.contains("DOE") && !error.message.contains("AQEB"))
        }
    }

    @Test func keyFileCreateShowAndRotate() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/blob-keys.json"
        let created = try BlobKeyring.createFile(at: path)
        #expect(created.currentKeyID == "k1" && created.keyIDs == ["k1"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["blob-keys.json"], "no temporary file left")
        // Creating again never replaces the keys.
        let again = #expect(throws: BlobSealingError.self) { try BlobKeyring.createFile(at: path) }
        #expect(again?.code == "keys.exists")
        #expect(try BlobKeyring.createFileIfMissing(at: path) == false)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        #expect(json?["current"] as? String == "k1")
        #expect((json?["keys"] as? [String: String])?["k1"].flatMap { Data(base64Encoded: $0) }?.count == 32)

        // A blob sealed under k1 opens after the rotation to k2; new seals use k2.
        let sealedUnderK1 = try created.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        #expect(try BlobKeyring.rotate(file: path) == "k2")
        let reloaded = try BlobKeyring.load(path: path)
        #expect(reloaded.currentKeyID == "k2" && reloaded.keyIDs == ["k1", "k2"])
        #expect(try reloaded.open(sealedUnderK1, site: "H001", study: "1.2.3", sop: "1.2.3.4") == plaintext)
        let sealedUnderK2 = try reloaded.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        #expect(Array(sealedUnderK2[5..<7]) == Array("k2".utf8))
        #expect(try BlobKeyring.rotate(file: path, newKeyID: "2025-q3") == "2025-q3")
        let invalid = #expect(throws: BlobSealingError.self) { try BlobKeyring.rotate(file: path, newKeyID: "bad id") }
        #expect(invalid?.code == "keys.invalidID")
        let duplicate = #expect(throws: BlobSealingError.self) { try BlobKeyring.rotate(file: path, newKeyID: "k1") }
        #expect(duplicate?.code == "keys.exists")
        #expect(try BlobKeyring.load(path: path).keyIDs == ["2025-q3", "k1", "k2"])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
    }

    @Test func aRunningKeyringPicksUpARotation() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/blob-keys.json"
        try BlobKeyring.createFile(at: path)
        // Checks the file on every use (the default looks every two seconds).
        let running = try BlobKeyring.load(path: path, checkInterval: .zero)
        let slow = try BlobKeyring.load(path: path, checkInterval: .seconds(3600))
        let old = try running.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        try BlobKeyring.rotate(file: path)
        let fresh = try running.seal(plaintext, site: "H001", study: "1.2.3", sop: "1.2.3.4")
        #expect(Array(fresh[5..<7]) == Array("k2".utf8))
        #expect(try running.open(old, site: "H001", study: "1.2.3", sop: "1.2.3.4") == plaintext)
        // A keyring that has not looked yet still opens a blob under the new key: an unknown id
        // makes it look at once.
        #expect(slow.currentKeyID == "k1")
        #expect(try slow.open(fresh, site: "H001", study: "1.2.3", sop: "1.2.3.4") == plaintext)
        #expect(slow.currentKeyID == "k2")
        // A broken rewrite keeps the keys in use and says why.
        try Data("{".utf8).write(to: URL(fileURLWithPath: path + ".new"))
        chmod(path + ".new", 0o600)
        rename(path + ".new", path)
        #expect(try running.open(fresh, site: "H001", study: "1.2.3", sop: "1.2.3.4") == plaintext)
        #expect(running.currentKeyID == "k2")
        #expect(running.reloadProblem?.code == "keys.malformed")
    }

    @Test func keyFilesThatAreNotPrivateOrNotValidAreRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/blob-keys.json"
        try BlobKeyring.createFile(at: path)
        for mode in [0o640, 0o604, 0o644, 0o660] {
            chmod(path, mode_t(mode))
            let error = #expect(throws: BlobSealingError.self) { try BlobKeyring.load(path: path) }
            #expect(error?.code == "keys.permissions", "mode \(String(mode, radix: 8))")
            let rotate = #expect(throws: BlobSealingError.self) { try BlobKeyring.rotate(file: path) }
            #expect(rotate?.code == "keys.permissions")
        }
        chmod(path, 0o400)
        #expect(try BlobKeyring.load(path: path).currentKeyID == "k1")

        let missing = #expect(throws: BlobSealingError.self) { try BlobKeyring.load(path: dir + "/none.json") }
        #expect(missing?.code == "keys.unreadable")
        func write(_ text: String) throws -> String {
            let file = dir + "/\(UUID().uuidString).json"
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            chmod(file, 0o600)
            return file
        }
        let k = Data(Self.key(7)).base64EncodedString()
        let cases: [(String, String)] = [
            ("not json", "keys.malformed"),
            ("{\"current\": \"k1\"}", "keys.malformed"),
            ("{\"current\": \"k1\", \"keys\": {\"k1\": \"***\"}}", "keys.malformed"),
            ("{\"current\": \"k1\", \"keys\": {\"k1\": \"\(Data([1, 2, 3]).base64EncodedString())\"}}", "keys.malformed"),
            ("{\"current\": \"k2\", \"keys\": {\"k1\": \"\(k)\"}}", "keys.noCurrent"),
            ("{\"current\": \"k 1\", \"keys\": {\"k 1\": \"\(k)\"}}", "keys.invalidID"),
        ]
        for (text, code) in cases {
            let file = try write(text)
            let error = #expect(throws: BlobSealingError.self) { try BlobKeyring.load(path: file) }
            #expect(error?.code == code, "\(text)")
            #expect(error?.message.contains(k) == false)
        }
        #expect(try BlobKeyring.load(path: try write("{\"current\": \"k1\", \"keys\": {\"k1\": \"\(k)\"}}")).keyIDs == ["k1"])
    }

    @Test func configurationFromOptionOrEnvironment() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/blob-keys.json"
        try BlobKeyring.createFile(at: path)
        #expect(try BlobKeyring.configured(option: nil, environment: [:]) == nil)
        #expect(try BlobKeyring.configured(option: "", environment: [BlobKeyring.environmentVariable: ""]) == nil)
        #expect(try BlobKeyring.configured(option: nil, environment: [BlobKeyring.environmentVariable: path])?.path == path)
        #expect(try BlobKeyring.configured(option: path, environment: [BlobKeyring.environmentVariable: dir + "/other"])?.path == path)
        #expect(throws: BlobSealingError.self) { try BlobKeyring.configured(option: dir + "/missing", environment: [:]) }
    }

    @Test func eachSiteHasItsOwnDataKey() throws {
        // The same master, two sites: a blob of one does not open as the other's, even with
        // the study and instance right (the site is both the HKDF info and part of the AAD).
        let keyring = try BlobKeyring(current: "k1", keys: ["k1": Self.key(1)])
        let a = try keyring.seal(plaintext, site: "H001", study: "1.2", sop: "1.2.3")
        let b = try keyring.seal(plaintext, site: "H002", study: "1.2", sop: "1.2.3")
        #expect(try keyring.open(a, site: "H001", study: "1.2", sop: "1.2.3") == plaintext)
        #expect(try keyring.open(b, site: "H002", study: "1.2", sop: "1.2.3") == plaintext)
        #expect(throws: BlobSealingError.self) { try keyring.open(b, site: "H001", study: "1.2", sop: "1.2.3") }
    }
}
