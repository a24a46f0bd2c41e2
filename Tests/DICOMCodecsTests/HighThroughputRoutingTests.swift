import Foundation
import Testing
@testable import DICOMCodecs

/// HT block coding goes to OpenJPH only: Debian's OpenJPEG 2.5.0 aborts the process (an
/// assertion in its HT decoder, `mel_init`) on this damaged HTJ2K code-block, found by the
/// codec fuzzer (Fuzz/regressions/codecs/openjpeg-ht-mel-assert). Reaching OpenJPEG's HT
/// decoder with it would kill the test process, so passing means it was not reached.
@Suite struct HighThroughputRoutingTests {
    static let crashing = [UInt8](Data(base64Encoded: "/0//UQApQAAAAAAoAAAAIAAAAAAAAAAAAAAAKAAAACAAAAAAAAAAAAABBwEB/1AACAACAAAABP9SAAwAAgABAAUEBEAB/1wAEyBQWFhgWFhgWFhgWFhYUFBY/2QAFgABT3BlbkpQSCBWZXIgMC45LjAu/5AACgAAAAAC6wAB/5PAEwB50QEBdADACWAE0AEoywCHdAAo+gACNACiAQd0AMAJ4AVMAE7UDmAAQrQA3NJ4HP//BwYAab+VAEWqLwAjlADAC1YAWlABaoA+1BqWmFEwZJ6zLQ9tAOjEAX5zmAAVBaVYxlZR/iL+AHJijL7jOABEE0kQdKhEfyAGIegBZs+xxflBuQDAC7qAF2UALtQqoHMsfs21wk1otOTeY2EBNImoCDx8sChgNkOF6EG5wVAZY0b+Rcwh0uHzYWqJj7dEpmkNkkXUTzUBCDTNeNBGj8Xvhs0QQLlPCXDYaSjg5lgT5hUKoevr4QIDTxuVNxTdd5XmwBGm3pMQkwEKs0cL9EeFaATBxv6m44QKquLLZ6DEUmzg0QE5II0Y4ECKg4w/nGJ6X1eh0RbJfIutqe81AcAX0zAF9PQAvbxhWLFlgvkhGuCWjch2w7lRi9SYm1dAWxLhLCXGVDAi2xnunKWDRKyjWFXBg0cDFb2gMlVIVAChA6zsy0yqRCEi2oDJ7EEG5AvI7SJhT/iDDkHEtAG6PSFoqs84oXKw7YeZPz8fHehFMparx5rEpu8rt/e0lrSVRzw43wuKs3cK2ABXEQXYWkzyiWXhQ2nr6quVIcbUivzqcgSRkeUEcZoRkb4iuVORdd+go7VLDJGgiJExkkg+FZcIgMCQCxhOQuIUAIBQFRdHslHbZEFaYoMoKbCQIkSsF8KErJJsLUASBlQB8hEiFESUURDEGyCA9HgiKVyVlD7gqkl7gw1/lq7Qvfhc12pLngz1ud2BhjBGdjHO1TPbOSQQI0f7o2bsPtChg7K5fp49cMIXQHrGTlSJKIpbHfyYBBMBi+CCBLwYiUXGZHxLUnQxjDrA3EOASDHENhSRO4BIKYzCJKUVmABNc/t3rheLH3XXj89FnLN5to8y8eeKd1MZWusV1fVKuraz3a67979Pt9+PXXjYueQ/l+n76Pf1TnN2IyffBy5/Hlz6c1toBP/ZAA==")!)
    let descriptor = FrameDescriptor(rows: 32, columns: 40, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, isSigned: false,
                                     photometricInterpretation: "MONOCHROME2")

    func decode(_ codec: some PixelCodec) -> CodecError? {
        var output = [UInt8](repeating: 0, count: descriptor.frameBytes)
        let d = descriptor
        do {
            _ = try Self.crashing.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { out in try codec.decode(input, into: out, descriptor: d) }
            }
            return nil
        } catch let error as CodecError {
            return error
        } catch {
            return CodecError(.corrupt, "untyped error")
        }
    }

    @Test func openJPEGRefusesHighThroughputCodingWithATypedError() throws {
        let error = try #require(decode(JPEG2000Codec()))
        #expect(error.codeValue == .unsupported)
        #expect(error.message.contains("OpenJPH"))
    }

    @Test func theGridsRegistryAnswersWithATypedError() throws {
        var output = [UInt8](repeating: 0, count: descriptor.frameBytes)
        let d = descriptor
        #expect(throws: CodecError.self) {
            _ = try Self.crashing.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { out in
                    try CodecRegistry.standard.decode(transferSyntax: JPEG2000Codec.htLossless, input, into: out, descriptor: d)
                }
            }
        }
    }

    /// HT coding is found wherever a decoder would pick it up: Rsiz, CAP, COD in the main
    /// header; a Part 1 stream without any of them is left alone.
    @Test func highThroughputCodingIsFoundInTheHeaders() throws {
        let header = try Self.crashing.withUnsafeBytes { b in try J2KStreamHeader.parse(b) }
        #expect(header.isHighThroughput)
        // The same stream with Rsiz cleared and the CAP segment's marker turned into a COM
        // (FF64): the COD segment's code-block style still says HT.
        var disguised = Self.crashing
        disguised[6] = 0x00; disguised[7] = 0x00 // Rsiz (after SOC, SIZ and Lsiz)
        let cap = try #require((0..<(disguised.count - 1)).first { disguised[$0] == 0xFF && disguised[$0 + 1] == 0x50 })
        disguised[cap + 1] = 0x64
        let uses = try disguised.withUnsafeBytes { b -> Bool in
            let h = try J2KStreamHeader.parse(b)
            #expect(!h.isHighThroughput)
            return try h.usesHighThroughputCoding(b)
        }
        #expect(uses)
    }
}
