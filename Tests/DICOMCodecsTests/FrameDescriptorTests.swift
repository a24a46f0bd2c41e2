import DICOMCodecs
import Testing

@Suite struct FrameDescriptorTests {
    @Test func frameBytesFollowBitsAllocated() {
        let grey12 = FrameDescriptor(rows: 4, columns: 3, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, isSigned: false, photometricInterpretation: "MONOCHROME2")
        #expect(grey12.frameBytes == 24)
        let rgb = FrameDescriptor(rows: 2, columns: 5, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, isSigned: false, photometricInterpretation: "RGB")
        #expect(rgb.frameBytes == 30)
        #expect(CodecError(.corrupt, "x").code == "codec.corrupt")
    }
}
