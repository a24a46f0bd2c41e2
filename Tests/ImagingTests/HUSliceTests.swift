import DICOM
import Testing
@testable import Imaging

/// The direct slice path must give exactly what the general preprocessor gives (rounded the
/// same way), or decline.
@Suite struct HUSliceTests {
    /// The general path: `SeriesPreprocessor` with `.screening` at the target size, rounded.
    func general(_ slice: SliceInput, width: Int, height: Int) throws -> [Int16] {
        var options = PreprocessOptions.screening
        if width != slice.columns || height != slice.rows {
            options.targetWidth = width
            options.targetHeight = height
        }
        let voxels = try SeriesPreprocessor.process([slice], options: options).volume.voxels
        return voxels.map { $0.isFinite ? Int16(max(-32768, min(32767, $0.rounded()))) : 0 }
    }

    func slice(_ pixels: PixelStorage, columns: Int, rows: Int, slope: Double, intercept: Double) -> SliceInput {
        SliceInput(pixels: pixels, rows: rows, columns: columns, modalityLUT: ModalityLUT(slope: slope, intercept: intercept))
    }

    @Test(arguments: [(1.0, -1024.0), (0.5, -1024.5), (2.5, 3.25), (1.0, 0.0), (-1.0, 100.0)])
    func equalsTheGeneralPathKeptAndHalved(slope: Double, intercept: Double) throws {
        var rng = SystemRandomNumberGenerator()
        let columns = 64, rows = 48
        let signed = PixelStorage.int16((0..<(columns * rows)).map { _ in Int16.random(in: -3000...3000, using: &rng) })
        let unsigned = PixelStorage.uint16((0..<(columns * rows)).map { _ in UInt16.random(in: 0...65535, using: &rng) })
        for pixels in [signed, unsigned] {
            let s = slice(pixels, columns: columns, rows: rows, slope: slope, intercept: intercept)
            for (width, height) in [(columns, rows), (columns / 2, rows / 2)] {
                let direct = try #require(HUSlice.direct(s, width: width, height: height))
                #expect(direct == (try general(s, width: width, height: height)), "\(width)x\(height) slope \(slope) intercept \(intercept)")
            }
        }
    }

    @Test func declinesWhatItDoesNotCover() {
        let s = slice(.int16(Array(repeating: 7, count: 30 * 20)), columns: 30, rows: 20, slope: 1, intercept: 0)
        #expect(HUSlice.direct(s, width: 10, height: 7) == nil)   // not a halving
        #expect(HUSlice.direct(s, width: 15, height: 20) == nil)  // one axis only
        let bytes = slice(.uint8(Array(repeating: 7, count: 30 * 20)), columns: 30, rows: 20, slope: 1, intercept: 0)
        #expect(HUSlice.direct(bytes, width: 30, height: 20) == nil)  // 8-bit stored values
    }

    @Test func roundsHalfAwayFromZeroAndClamps() {
        for v: Float in [0.5, -0.5, 1.49, -1.5, 2.5, 40000, -40000, 0.49999997, -0.49999997, 32766.5] {
            #expect(HUSlice.rounded(v) == Int16(max(-32768, min(32767, v.rounded()))), "\(v)")
        }
        #expect(HUSlice.rounded(.nan) == 0)
        #expect(HUSlice.rounded(.infinity) == 0)
    }
}
