import DICOMCodecs
import Foundation
import Testing
@testable import DICOM

/// OpenJPH in front of OpenJPEG for HTJ2K: the same pixels as pydicom (whose plugin is
/// OpenJPEG), and every stream OpenJPH should not take handed to OpenJPEG.
@Suite("OpenJPH HTJ2K codec")
struct OpenJPHCodecTests {
    static let htFixtures = CodecFixtures.names.filter { $0.hasPrefix("htj2k") }
    static let openJPHOnly = DecodeOptions(codecs: CodecRegistry([OpenJPHCodec()]))
    static let openJPEGOnly = DecodeOptions(codecs: CodecRegistry([JPEG2000Codec(decodesHighThroughput: true)]))

    @Test("OpenJPH alone decodes every HTJ2K fixture as pydicom does", arguments: htFixtures)
    func decodesFixture(name: String) throws {
        let want = try #require(CodecFixtures.expected[name])
        let file = try CodecFixtures.file(name)
        // OpenJPH only: a refusal would be dicom.unsupportedTransferSyntax, not a fallback.
        let image = try file.decodePixels(options: Self.openJPHOnly)
        #expect(image.photometricInterpretation == want["photometric"] as? String)
        let bytes = image.littleEndianBytes()
        if want["lossy"] as? Bool == true {
            let reference = try CodecFixtures.reference(name)
            #expect(bytes.count == reference.count)
            if bytes.count == reference.count {
                #expect(maxAbsoluteDifference(bytes, reference, dtype: image.dtype) <= 1, "\(name) differs from pydicom by more than 1")
            }
        } else {
            #expect(sha256Hex(bytes) == want["sha256"] as? String, "\(name) sha256")
            #expect(image == (try file.decodePixels(options: Self.openJPEGOnly)), "\(name): OpenJPH and OpenJPEG disagree")
        }
    }

    static func firstFrame(_ name: String) throws -> (FrameDescriptor, [UInt8]) {
        let file = try CodecFixtures.file(name)
        let ds = file.dataSet
        let enc = try #require(ds[.pixelData]?.encapsulated)
        let d = FrameDescriptor(rows: ds.int(.rows)!, columns: ds.int(.columns)!, samplesPerPixel: ds.int(.samplesPerPixel)!,
                                bitsAllocated: ds.int(.bitsAllocated)!, bitsStored: ds.int(.bitsStored)!,
                                isSigned: ds.int(.pixelRepresentation) == 1,
                                photometricInterpretation: ds.string(.photometricInterpretation)!)
        let frames = (ds.int(.numberOfFrames) ?? 1) > 1 ? enc.fragments : [enc.fragments.flatMap { $0 }]
        return (d, frames[0])
    }

    @Test("a cut-off HTJ2K stream is corrupt, alone and through the registry")
    func truncatedStreamFallsBack() throws {
        let (d, stream) = try Self.firstFrame("htj2k201_u12.dcm")
        var output = [UInt8](repeating: 0, count: d.frameBytes)
        for cut in [stream.count - 2, stream.count / 2] {
            let head = Array(stream.prefix(cut))
            do {
                _ = try head.withUnsafeBytes { input in
                    try output.withUnsafeMutableBytes { out in try OpenJPHCodec().decode(input, into: out, descriptor: d) }
                }
                Issue.record("OpenJPH decoded a stream cut at \(cut) of \(stream.count) bytes")
            } catch let error as CodecError {
                #expect(error.codeValue == .corrupt, "cut at \(cut): \(error)")
            }
            do {
                _ = try head.withUnsafeBytes { input in
                    try output.withUnsafeMutableBytes { out in
                        try CodecRegistry.standard.decode(transferSyntax: JPEG2000Codec.htLossless, input, into: out, descriptor: d)
                    }
                }
                Issue.record("cut at \(cut) decoded")
            } catch let error as CodecError {
                #expect(error.codeValue == .corrupt, "cut at \(cut): \(error)")
            }
        }
    }

    @Test("a Part 1 codestream and a SIZ that disagrees with the data set")
    func refusals() throws {
        let (d, part1) = try Self.firstFrame("j2k90_u12.dcm")
        var output = [UInt8](repeating: 0, count: d.frameBytes)
        do {
            _ = try part1.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { out in try OpenJPHCodec().decode(input, into: out, descriptor: d) }
            }
            Issue.record("OpenJPH took a Part 1 codestream")
        } catch let error as CodecError {
            #expect(error.codeValue == .unsupported)
        }
        // Registered for the HTJ2K syntax anyway, the registry passes it to OpenJPEG.
        let viaRegistry = try part1.withUnsafeBytes { input in
            try output.withUnsafeMutableBytes { out in
                try CodecRegistry.standard.decode(transferSyntax: JPEG2000Codec.htLossless, input, into: out, descriptor: d)
            }
        }
        #expect(viaRegistry == .asDeclared)

        let (htD, ht) = try Self.firstFrame("htj2k201_u12.dcm")
        var wrong = htD
        wrong.rows *= 1000
        do {
            try ht.withUnsafeBytes { input in try OpenJPHCodec().validate(input, descriptor: wrong) }
            Issue.record("a SIZ of \(htD.rows) rows passed for \(wrong.rows)")
        } catch let error as CodecError {
            #expect(error.codeValue == .mismatch)
            #expect(error.message.contains("\(wrong.rows)"))
        }
    }

    /// Found by the DICOM fuzzer (Fuzz/regressions/dicom/openjph-codeblock-23gb): a 64×64
    /// HTJ2K frame whose COD declares code-block exponents 40 and 66 made OpenJPH allocate
    /// 23 GB. The coding style is checked against the standard's limits first.
    @Test("a coding style beyond the standard's limits is corrupt before OpenJPH allocates")
    func codeBlockLimits() throws {
        let bytes = [UInt8](Data(base64Encoded: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABESUNNAgAAAFVMBADSAAAAAgABAE9CAAACAAAAAAECAAIAVUkaADEuMi44NDAuMTAwMDguNS4xLjQuMS4xLjcAAgADAFVJQAAxLjIuODI2LjAuMS4zNjgwMDQzLjguNDk4Ljg4NzQ4MjY4NTU2MDgxMjMwMDAzMDI2MTc2ODkwMTkyMDIyMDI4AgAQAFVJGAAxLjIuODQwLjEwMDA4LjEuMi40LjIwMwACABIAVUkcADEuMi44MjYuMC4xLjM2ODAwNDMuOC40OTguMQACABMAU0gOAFBZRElDT00gMy4wLjIgCAAWAFVJGgAxLjIuODQwLjEwMDA4LjUuMS40LjEuMS43AAgAGABVSUAAMS4yLjgyNi4wLjEuMzY4MDA0My44LjQ5OC44ODc0ODI2ODU1NjA4MTIzMDAwMzAyNjE3Njg5MDE5MjAyMjAvOAgAYABDUwIAT1QIAGQAQ1MEAFdTRCAQABAAUE4OAEZpeHR1cmVeQ29kZWMgEAAgAExPDgBDT0RFQy1GSVhUVVJFICAADQBVSUAAMS4yLjgyNi4wLjEuMzY4MDA0My44LjQ5OC40MzYwOTAwNzYyMDUyNDY1MjQwMTQxMjEwMDgxNDA1OTczMDk4MSAADgBVSUAAMS4yLjgyNi4wLjEuMzY4MDA0My44LjQ5OC4yNzk4Njc1NTM3MDY1Mzk5MDI4NjExMzUxOTc5NTI0MzYxOTkzNCgAAgBVUwIAAQAoAAQAQ1MMAE1PTk9DSFJPTUUyICgAEABVUwIAQAAoABEAVVMCAEAAKAAAAVVTAgAQACgAAQFVUwIADAAoAAIBVVMCAAsAKAADAVVTAgAAACgAECFDUwIAMDHgfxAAT0IAAP/////+/wDgBAAAAAAAAAD+/wDgxgwAAP9P/1EAKUAAAAAAQAAAAEAAAAAAAAAAAAAAAEAAAABAAAAAAAAAAAAAAQsBAf9QAAgAAgAAACT/UgAMAAIAAQAbKEJAAP9cACMih3SHRYdFhxd/XH9cfz13qneqd8JgNWA1YHhYGlgaZ7//ZAAWAAFPcGVuSlBIIFZlciAwLjkuMC7/kAAKAAAAAAxBAAH/k8AAVgB33lV8vn17/gJBtADAAFVAAFTAAFSA/LMUoAZPAOOUADE0ovciAKGUAExXdo4TAKKUAMAAtuAAW3AALYBqxBfZiLsqTxk4AKEl2RAa9dhUkQXNEGBDNwCHItjoNk1RuuU44EzTSWOAXCLW/CyLjEAjNwBZxP6TTFLqIhNelixgb+8j/QiVjCBS1wDAAXqsABeoQAF6YGBwCHeJHEIKJnhg6FOu5CwFM5HQGERkMmfhTh03hLaxUL5zBNqegUoPbDZn4DEo5Wo2pFDAcUWgRJErh6Oi2FHRVn8DwAAlqSkBZwi0EQALAEAqkgGvTtwCqEnYUQUwY9Z1Q0QBs9se5gaLtgezYHu2ftXQVU2EggRGkUlGxBf69SJ5AnQPPinwjrE88FCgtGwEALJKFRRyCmvQ0bxAADLEEAC0AZZRWgf4XBKR8DBU0QqUgCSJBFlQDbB0LIXBKx1/gMVkUQFgAjWEakTrTbBxRx1QBhTymojIUEOEkcsKJ6E/xFBDXFZFiEIAQDAAsgHABffcAF95QAX28MwW3XKHzEyrC8LkoQGEYVNbYItQKKQ0DFiMAiUrSZP76VkUMebPoFVIUrdNxOuigEHyEGhcEZ3NHEw4IU9OqJLCtYmsmIhLEAqubMyQxVrQgJVkb0INKXKIY6ag9yBd44orAlE+ImF3osho+UaI9kROzDq5xvSMmLDkNk4t0WkVEJrQG+HpPDUDWxcMwlt6lBTLYxRC0jh7KhQVUHZSF+HNEIGNSYhoFayLYrhI29Kw04wdcfi0rAZIQKrQaThAVEX+APBhcqlJLXLiQSYCQB6h85C7FClQNKVsCVeeiB4ZVXIB7giUI+M/BQphqOHQEC2BEsdJIAQgApkDa5RWEXZQIVWzWGS1rauVWimHQXjq1nzP97hc+REhZEeNNSS5b04Y4wRT1hK18EhoklhgxOFARHwsMuOjjEJsg+avhAsNDEgD5HMpZiMkK86LNgA+UzIvAsWPAHniAEBoOJgrosgKRAmFfV3ldhMhR53gwRPQEqpI1DiG8AOpyIN4kOXyNuiDxtSANXYMmQfKiNx1BkPQZYwXJLSRbNTsG6aQGOACVDwHlHTsTnxtWNnNsPvIkvZFqUAAE8K5cEZW6ouAgkwxLjIuODQwLjEwMDA4LjEuMi40LjUwD+CCAw0cObiohjoCB6ilLjTMAADTOQM7FD7Q/SRNwDCtPr2gBPBB4rDcCYSCoI9KWpvoAGAYsOUJAq4SNRDhA5CoDaAcRlIFcgE9CIh8RdGZDWAEgMvGbMfAX7kZQrnjhNGEBgUiC/r0IGscMYh0d4XrIRkGMBrOwBVlmUGR+ID7Lmn6BqU5SMHMTYj9VVQJFJmG1TdXFVkpQhQwwUpSg1LYiXpW2EGNQkPyPMAQzIGvxivcsb6x6Sy9ioARTCCgyf0BHMFINjlHSoQqFPxQyYx6GrhfgpBhvBUhE6jcHak8IQVeSEeUoAAaYdQAlgSxEERQswPAC/qqgBf1bwAX9MwPgKG0g0vkkramBVK41DEwBMmctBoRpzn3Mr4zNMoKYijtnCyggyx6Qe5lpJYSQlxhjXZY41eAjlAluJIVRbAJyJZCzgr1AQhWColgmQO8AQgcQA5SK2AEz0w+wbUok3rC5auqKDoEhWMEQZZpyIVyKofPyIKx1K6moA1YkJudwaYITFKD2zyCoNQHgoVzkh0PgKD40xVWqBYDjVDfsBJRqDYBuQG1vuEjOPil3bSKKxY9o9eSCgjARRw/SQAOTg6f2wYRsBQ6JtTQALW341eVJisC/kCJdCQw2BuS1mDynInl4a6c8NpvEMsgNwyMhNpRHlJS0AY5nqrzqJXuwi4j26EZTQwUAuzLimgE48zjoGhpAXMfmhBnqj6OCtNPjAgDXhe36R5GuIpj2SQwApLpX+OFBXAUs1cbWIbelepQNEtVVBXJoVnAVESolEoNFJXwjT7YSAJFwP2F6WCMPiXz0joLecICOQRB46J/wi5bI8geQSPgbAKrRBQBSTTJGDMsQaQphEJQQHieMBi4k8NxwGU9gJkHzd0aLZOqCZOhxAYnwI2CKAsfSkdaCN0gBARNU8uBRBiDidFigSudAFQ0cosE4gGdAmpq+BGA5KiwMZuNT+JO29aSjvEd8bhH1S+uYy6i1ltWMr5IsB4qzpHNy+BD4+68u3AYzyitvQrKV51Ch6hD2OcbZvwGjTbKYqzhDEW/cdnBSRSMkLz2KUobVSPEkV8O8cJBbKX3KSNA4yxHLlL5KF00lDgRmfAVJShDb7b1cjXSkK+d98sOKe1XgwwreJDzDalLFPz4uWGDp9vAQBLi9b7sos7kH8ti/R6TzQZb0qrhOVH6Pv+GjlE8k030RXg40o1/1E6rWzN9vB2kXBxGWko9BEcnIMbCTkuvOtpBgwIIApAOQ/0CE3tCbLnmijE4Kse+61NYP7WSYRDRxvEoO9DD64GFgfOAAq2WAaXFCqpR7Zs7UX+u1zcoUSgDLlqsAIIErpapN5CYKYepzUBMV3rmcWloSxThbpGcoEvW7GEwAQoKWbkj0Jwwhl1KKLgNK2Rh7sLSCFTAE0dN8AApSxJXCEAZPgOYoG0moCrvIVp0FElxVgjkCAeoIAXaZATAl2hdkQd8nCo42FVEbt14LDqarRSBIRaQ3yREkKhUos1I6IFM72gDrASXdBTcSB7WBYAEFCPw8q2huwr9SH2ogIFNiEvZXSK2BLRtsxKWyRESSJiWH+TpGAEkEATDsCiAQSkUMZNWZQiD/NeQEZJFDnyh6OAgw4bywiDRxsGnM1/gSJfEWWd29uK3ghZNvi06sBMBARGD/EWktMWwHUmvFo67qxAVGAXGLJ5AwogssKkXAliwpLYIeJNaSwAvZMku0Iph4ov1HAzbsUrGPvVSLQuu+6NEFd9syMaGdGYzuiAHJzFGlc3B05mRRacijBEmZXvCqmmMNYwlcJMSUkXhSDY5svGlDAJTqAcgwuaV3oTxPAEZCdJsuizpR33cd8Eg0gIyJhIuNhjGVI6MUEBEgl7gI/hn/Tz+DSUgatyDIFzigDJVZ1Y6opYRalqHKCMpWM+Do0rWJfBaKqUqO/WvOv2mQ1MyKgRDKkZF6sxOaVVprtVJwWdyHvlkl2nzTsGVqCOmuSXKUqbfOr89Uk9funozvxwAKHa+YaHs4V4gXktG+RwMBPW/cCxFAUS8w8lU97ZDc0pd2eBJOK92dvNStm1OUyTnsGyzAJfV63yltlTpXZL4gpYe+rf+ZJcV1nym+GEpgsuSIPXDZQ5bdSQrcqFGby6RTCsP5HJ3bvwpWPvvYKg7OQvLv7hYI1jGvWjLZcNpDQILoJLrMw6cDIOFxm9YgmX0sIUvyYTQ5NUgnDKoBoDpSBI1GSghWg7YIjMQBVoAA5X1mFs1onNIKgZJAOGcDFzliEjKgc19LYC7ocgETzQaxPmkQ3kJMaKwg8SKWBYCh+BuFkUH6XnXxaNvONJXxQz6XwFJHKLtQjjId1F3BTtpEmfIiGIW3N5YD87KKWcsgKabKnqDPgMBSIYw4h7Ap8DkgllhsUn1KiG2fnMzvR8BlUNU0gzOyqNp3JLAlM+mQUCtJLBrCLDGHgFChThR5BYjQHeuYiGU8wAQ4RBkoWxKHWF4MnIQSEtCQBZhIAPCJSsTcKdorX0R7b3LBGJJSdCAQ3h3dBdBQJg2VZlhxPJx0FHMMtZRxkuBAJjBJBcShklOCu24Uj0bc4sNhmRJ0pVtT3Hy0i7CxN9EmiVGpQRdgOeoIHN4hKCk9VDAAGKHpFAqe4CQAaLBsDiFyUodURAAGgWgRwEwqBR2QIyHSetLWWGMB7DFxgxEUZdELSv1CyuOhQYQOv4cACSVelT8xoafyyNjWp1r63nGI6UCnJs8JexDQNB3X4W4TdJQHnFP1Y0IslSQgsR/Jl7uS6jv2Scl7uDkDn3CYf8txa+KmBU5yQPmeD86mXxHPHUgqfcFUpfgSSWnTDtPc2tpe4HRVD8k19DYDL7JJSoxWI5PEguUWLmw9KZ0fXRsWF7yOqRDsFNsvdXXZvoWyuo3iGFwsWDdAx+r9yFc2MZaP31Pb3HH7+GjlZIvgM/lq9sn0pw3Y+djsVIpWTozsaCf0AZ1G4A3D9v19Hi+sq4aS2z28Nmo6998kV+XhwIAjLOWDv/ZAP7/3eAAAAAA")!)
        let file = try DICOMFile.read(bytes, options: ReadOptions(allowTruncated: true))
        let error = #expect(throws: DICOMError.self) { try file.decodePixels() }
        #expect(error?.code == CodecError.Code.corrupt.rawValue)
        #expect(error?.message.contains("code-block exponents") == true)
    }
}
