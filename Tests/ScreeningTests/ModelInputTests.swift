import Imaging
import Testing
@testable import Screening

@Suite struct ModelInputTests {
    /// A series whose tensor is HU * 0.5 + 10 (not plain HU, so the mapping is exercised);
    /// voxel value in HU = 100 * z + x.
    func series(width: Int = 8, height: Int = 6, depth: Int = 3, spacing: Double? = 1) throws -> PreprocessedSeries {
        var vox = [Float](repeating: 0, count: width * height * depth)
        for z in 0..<depth { for y in 0..<height { for x in 0..<width { vox[(z * height + y) * width + x] = Float((100 * Double(z) + Double(x)) * 0.5 + 10) } } }
        let v = try Volume(width: width, height: height, depth: depth, spacing: Spacing(x: spacing, y: spacing, z: 5), voxels: vox)
        let m = IntensityMapping(scale: 0.5, offset: 10, huMin: nil, huMax: nil, kind: "test")
        return PreprocessedSeries(volume: v, mapping: m, displayWindow: VOIWindow(center: 40, width: 80), geometry: SeriesGeometry.assemble([]),
                                  info: SeriesInfo())
    }

    func spec(window: [Double] = [0, 400], spacing: Double = 1, size: [Int] = [6, 8], channels: Int = 1) -> ModelInputSpec {
        ModelInputSpec(tensor: "slices", modality: "CT", bodyParts: [], windowHU: window, spacingMM: spacing, size: size, channels: channels)
    }

    @Test func identitySpacingGivesWindowedValues() throws {
        let s = try series()
        let t = try ModelInputTensor.slices(s, spec: spec())
        #expect(t.count == 3 * 6 * 8)
        for z in 0..<3 { for y in 0..<6 { for x in 0..<8 {
            let want = Float(min(1, max(0, (100 * Double(z) + Double(x)) / 400)))
            #expect(abs(t[(z * 6 + y) * 8 + x] - want) < 1e-5)
        } } }
        // Clipping at both ends of the window.
        let clipped = try ModelInputTensor.slices(s, spec: spec(window: [150, 200]))
        #expect(clipped[0] == 0)                      // slice 0: HU 0...7 < 150
        #expect(clipped[2 * 48] == 1)                 // slice 2: HU 200...207 >= 200
        #expect(abs(clipped[48 + 3] - Float(103 - 150) / 50) < 1e-5 || clipped[48 + 3] == 0)
    }

    @Test func doubleSpacingHalvesTheExtent() throws {
        // 9 columns at 1 mm: output of 9 columns at 2 mm covers the middle 5 from -8 mm to +8 mm.
        let s = try series(width: 9, height: 9, depth: 1)
        let t = try ModelInputTensor.slices(s, spec: spec(window: [-100, 100], spacing: 2, size: [9, 9]))
        let row = Array(t[(4 * 9)..<(5 * 9)])
        // Output column k sits at source column 4 + 2 (k - 4): -4, -2, 0, 2, 4, 6, 8, 10, 12.
        #expect(row[0] == 0 && row[1] == 0)           // outside: window lo -> 0
        #expect(row[7] == 0 && row[8] == 0)
        for k in 2...6 { #expect(abs(row[k] - Float((Double(2 * k - 4) + 100) / 200)) < 1e-5) }
        // Half spacing: bilinear between source columns.
        let fine = try ModelInputTensor.slices(s, spec: spec(window: [-100, 100], spacing: 0.5, size: [9, 9]))
        #expect(abs(fine[4 * 9 + 5] - Float((4.5 + 100) / 200)) < 1e-5)
        // Unknown pixel spacing counts as 1 mm.
        let unknown = try ModelInputTensor.slices(try series(width: 9, height: 9, depth: 1, spacing: nil), spec: spec(window: [-100, 100], spacing: 2, size: [9, 9]))
        #expect(unknown == t)
    }

    @Test func channelsStackNeighboursClampedAtTheEnds() throws {
        let s = try series(depth: 4)
        let one = try ModelInputTensor.slices(s, spec: spec(window: [0, 1000]))
        let three = try ModelInputTensor.slices(s, spec: spec(window: [0, 1000], channels: 3))
        let plane = 48
        #expect(three.count == 4 * 3 * plane)
        func item(_ z: Int, _ c: Int) -> ArraySlice<Float> { three[((z * 3 + c) * plane)..<((z * 3 + c + 1) * plane)] }
        func slice(_ k: Int) -> ArraySlice<Float> { one[(k * plane)..<((k + 1) * plane)] }
        #expect(item(0, 0) == slice(0) && item(0, 1) == slice(0) && item(0, 2) == slice(1))
        #expect(item(2, 0) == slice(1) && item(2, 1) == slice(2) && item(2, 2) == slice(3))
        #expect(item(3, 0) == slice(2) && item(3, 1) == slice(3) && item(3, 2) == slice(3))
        let five = try ModelInputTensor.slices(s, spec: spec(window: [0, 1000], channels: 5))
        #expect(Array(five[0..<(5 * plane)]) == Array(slice(0) + slice(0) + slice(0) + slice(1) + slice(2)))
    }

    @Test func badSpecsThrow() throws {
        let s = try series()
        let bad = [spec(window: [100, 0]), spec(window: [0]), spec(spacing: 0), spec(spacing: -1), spec(size: [6]), spec(size: [0, 8]),
                   spec(channels: 2), spec(channels: 0)]
        for b in bad {
            #expect(throws: ScreeningError.self) { try ModelInputTensor.slices(s, spec: b) }
            do { _ = try ModelInputTensor.slices(s, spec: b) } catch let e as ScreeningError { #expect(e.code == "screening.config") }
        }
    }
}
