import Testing
import DICOM
@testable import Imaging

@Suite struct KernelTests {
    @Test func modalityLUTToHU() throws {
        // CT: stored 0..4095 with slope 1, intercept -1024 -> HU.
        let stored: [Int16] = [0, 1024, 1064, 2024, 4095]
        let s = SliceInput(pixels: .int16(stored), rows: 1, columns: 5, modalityLUT: ModalityLUT(slope: 1, intercept: -1024))
        let series = try SeriesPreprocessor.process([s], options: PreprocessOptions(output: .hu))
        #expect(series.volume.voxels == [-1024, 0, 40, 1000, 3071])
    }

    @Test func slopeAndInterceptNonUnit() throws {
        let stored: [UInt16] = [0, 10, 100]
        let s = SliceInput(pixels: .uint16(stored), rows: 1, columns: 3, modalityLUT: ModalityLUT(slope: 0.5, intercept: -20))
        let series = try SeriesPreprocessor.process([s], options: PreprocessOptions(output: .hu))
        #expect(series.volume.voxels == [-20, -15, 30])
    }

    @Test func linearWindowMatchesStandardFormula() throws {
        // Brain window C40 W80: breakpoints c-0.5-(w-1)/2 = 0 and c-0.5+(w-1)/2 = 79.
        let w = VOIWindow(center: 40, width: 80)
        #expect(w.lowerBound == 0)
        #expect(w.upperBound == 79)
        #expect(w.apply(-100) == 0)
        #expect(w.apply(0) == 0)
        #expect(w.apply(80) == 1)
        // x = 39.5 is the centre of the ramp: ((39.5 - 39.5)/79 + 0.5) = 0.5
        #expect(abs(w.apply(39.5) - 0.5) < 1e-12)
        // x = 20: ((20 - 39.5)/79 + 0.5) = 0.253164...
        #expect(abs(w.apply(20) - (((20 - 39.5) / 79) + 0.5)) < 1e-12)
        // ymin/ymax scaling to 8 bits.
        #expect(abs(w.apply(20, ymin: 0, ymax: 255) - 64.5569620) < 1e-6)

        // The fused kernel agrees with the reference on stored values with an intercept.
        let stored: [Int16] = (0..<200).map { Int16($0 * 7) }
        let lut = ModalityLUT(slope: 1, intercept: -1024)
        let s = SliceInput(pixels: .int16(stored), rows: 10, columns: 20, modalityLUT: lut)
        let out = try SeriesPreprocessor.process([s], options: PreprocessOptions(window: .explicit(w), output: .window))
        for (i, v) in stored.enumerated() {
            let expected = w.apply(lut.apply(Double(v)))
            #expect(abs(Double(out.volume.voxels[i]) - expected) < 1e-5, "pixel \(i)")
        }
    }

    @Test func invalidWindowRejected() {
        #expect(throws: ImagingError.self) { try IntensityMapping.window(VOIWindow(center: 0, width: 0.5)) }
    }

    @Test func windowFromFileUsedByAuto() throws {
        let s = SliceInput(pixels: .int16([0, 50, 100]), rows: 1, columns: 3, window: VOIWindow(center: 50.5, width: 101))
        let out = try SeriesPreprocessor.process([s], info: SeriesInfo(modality: "CT", bodyPart: "HEAD"))
        #expect(out.displayWindow == VOIWindow(center: 50.5, width: 101))
        // lower bound 0, upper bound 100: 0 -> 0, 50 -> 0.5, 100 -> 1
        #expect(out.volume.voxels == [0, 0.5, 1])
    }

    @Test func presetsByBodyPart() throws {
        #expect(WindowPreset.forBodyPart("HEAD") == .brain)
        #expect(WindowPreset.forBodyPart("chest") == .lung)
        #expect(WindowPreset.forBodyPart("ABDOMEN") == .abdomen)
        #expect(WindowPreset.forBodyPart("TOE") == nil)
        #expect(WindowPreset.lung.window == VOIWindow(center: -600, width: 1500))
        #expect(WindowPreset.bone.window.width == 1800)
        let s = SliceInput(pixels: .int16([0]), rows: 1, columns: 1)
        let out = try SeriesPreprocessor.process([s], info: SeriesInfo(modality: "CT", bodyPart: "CHEST"))
        #expect(out.displayWindow == WindowPreset.lung.window)
    }

    @Test func monochrome1IsInverted() throws {
        // CR in MONOCHROME1: low stored value is displayed white -> output 1 after inversion.
        let stored: [UInt16] = [0, 1023, 4095]
        let w = VOIWindow(center: 2048, width: 4096) // bounds 0 .. 4095
        let m1 = SliceInput(pixels: .uint16(stored), rows: 1, columns: 3, photometric: .monochrome1)
        let m2 = SliceInput(pixels: .uint16(stored), rows: 1, columns: 3, photometric: .monochrome2)
        let a = try SeriesPreprocessor.process([m1], options: PreprocessOptions(window: .explicit(w)))
        let b = try SeriesPreprocessor.process([m2], options: PreprocessOptions(window: .explicit(w)))
        #expect(a.volume.voxels[0] == 1)
        #expect(a.volume.voxels[2] == 0)
        #expect(b.volume.voxels[0] == 0)
        #expect(b.volume.voxels[2] == 1)
        for i in 0..<3 { #expect(abs(a.volume.voxels[i] + b.volume.voxels[i] - 1) < 1e-6) }
        // HU output keeps values for MONOCHROME1.
        let h = try SeriesPreprocessor.process([m1], options: PreprocessOptions(output: .hu))
        #expect(h.volume.voxels == [0, 1023, 4095])
        // Stored-value inversion helper.
        var raw: [UInt16] = [0, 1000, 4095]
        raw.withUnsafeMutableBufferPointer { Kernels.invertStored($0, bitsStored: 12) }
        #expect(raw == [4095, 3095, 0])
        #expect(Photometric(dicom: "MONOCHROME1") == .monochrome1)
        #expect(Photometric(dicom: "RGB") == nil)
    }

    @Test func rangeNormalisation() throws {
        let s = SliceInput(pixels: .int16([-2000, -1000, 500, 2000, 3000]), rows: 1, columns: 5)
        let out = try SeriesPreprocessor.process([s], options: PreprocessOptions(output: .range(-1000, 2000)))
        #expect(out.volume.voxels == [0, 0, 0.5, 1, 1])
        #expect(abs(out.mapping.hu(tensor: 0.5) - 500) < 1e-9)
        #expect(out.mapping.tensorValue(hu: 3000) == 1)
    }

    @Test func mismatchedSlicesRejected() throws {
        var p = SeriesPreprocessor()
        try p.add(SliceInput(pixels: .int16([1, 2, 3, 4]), rows: 2, columns: 2))
        #expect(throws: ImagingError.self) { try p.add(SliceInput(pixels: .int16([1, 2, 3]), rows: 1, columns: 3)) }
        #expect(throws: ImagingError.self) { try p.add(SliceInput(pixels: .int16([1]), rows: 2, columns: 2)) }
    }
}

@Suite struct ResampleTests {
    func run(_ src: [Float], _ sw: Int, _ sh: Int, _ tw: Int, _ th: Int) throws -> [Float] {
        var r = try Resampler(sourceWidth: sw, sourceHeight: sh, targetWidth: tw, targetHeight: th)
        var out = [Float](repeating: -1, count: tw * th)
        try src.withUnsafeBufferPointer { s in try out.withUnsafeMutableBufferPointer { try r.resample(s, into: $0) } }
        return out
    }

    @Test func identity() throws {
        let src: [Float] = (0..<12).map(Float.init)
        #expect(try run(src, 4, 3, 4, 3) == src)
    }

    @Test func areaAverageHalves() throws {
        // 4x4 -> 2x2: each output is the mean of a 2x2 block.
        let src: [Float] = [1, 3, 10, 20,
                            5, 7, 30, 40,
                            0, 0, 4, 4,
                            0, 8, 4, 4]
        #expect(try run(src, 4, 4, 2, 2) == [4, 25, 2, 4])
    }

    @Test func areaAverageFractional() throws {
        // 1D 3 -> 2: output 0 covers [0, 1.5): (a + 0.5 b) / 1.5; output 1 covers [1.5, 3).
        let out = try run([3, 6, 9], 3, 1, 2, 1)
        #expect(abs(out[0] - 4) < 1e-6)
        #expect(abs(out[1] - 8) < 1e-6)
        // Averaging preserves the mean.
        let src: [Float] = (0..<49).map { Float(($0 * 37) % 11) }
        let small = try run(src, 7, 7, 3, 3)
        let m1 = src.reduce(0, +) / 49, m2 = small.reduce(0, +) / 9
        #expect(abs(m1 - m2) < 1e-4)
    }

    @Test func bilinearUpscale() throws {
        // 2 -> 4 with half-pixel centres: x = (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped to [0,1]).
        let out = try run([0, 4], 2, 1, 4, 1)
        #expect(out == [0, 1, 3, 4])
        // 2x2 -> 4x4: separable, centre 2x2 are the bilinear blends.
        let out2 = try run([0, 4, 8, 12], 2, 2, 4, 4)
        #expect(out2[5] == 3)   // y=0.25,x=0.25: 0*.5625 + 4*.1875 + 8*.1875 + 12*.0625 = 3
        #expect(out2[0] == 0)
        #expect(out2[15] == 12)
    }

    @Test func preprocessorResamplesAndScalesSpacing() throws {
        let px: [Int16] = (0..<16).map { Int16($0) }
        let s = SliceInput(pixels: .int16(px), rows: 4, columns: 4, header: SliceHeader(pixelSpacing: [0.5, 0.5]))
        let out = try SeriesPreprocessor.process([s], options: PreprocessOptions(targetWidth: 2, targetHeight: 2, output: .hu))
        #expect(out.volume.voxels == [2.5, 4.5, 10.5, 12.5])
        #expect(out.volume.spacing.x == 1.0)
        #expect(out.volume.spacing.y == 1.0)
        #expect(out.sourceWidth == 4)
    }
}
