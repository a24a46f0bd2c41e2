import DICOM
import DICOMCodecs
import Foundation
import Imaging
import Testing

/// Frames made ready for a screen (what the portal's `/rendered` returns): each pixel through
/// the modality LUT and the VOI window of PS3.3 C.11.2.1.2, checked against `VOIWindow.apply`,
/// the reference implementation of that formula.
@Suite struct DisplayFrameTests {
    func decoded(_ storage: PixelStorage, rows: Int, columns: Int, frames: Int = 1, photometric: String = "MONOCHROME2", samples: Int = 1) throws -> DecodedImage {
        var ds = DataSet()
        try ds.setPixelData(storage, rows: rows, columns: columns, frames: frames, samplesPerPixel: samples, photometricInterpretation: photometric)
        return try DICOMFile.read(DICOMWriter.write(ds)).decodePixels()
    }

    @Test func everyPixelFollowsTheWindowFormula() throws {
        let stored: [Int16] = [-2000, 0, 1000, 1024, 1043, 1064, 1104, 3000, -1, 30000, 1063, 1065]
        let image = try decoded(.int16(stored), rows: 3, columns: 4)
        let lut = ModalityLUT(slope: 1, intercept: -1024)
        for window in [VOIWindow(center: 40, width: 80), VOIWindow(center: -600, width: 1500), VOIWindow(center: 500, width: 2000), VOIWindow(center: 0, width: 1)] {
            let frame = try DisplayFrame.render(image, frame: 0, lut: lut, window: window, defaultWindow: nil)
            #expect(frame.width == 4 && frame.height == 3 && frame.channels == 1)
            let expected = stored.map { UInt8((window.apply(lut.apply(Double($0))) * 255).rounded()) }
            #expect(frame.pixels == expected, "window \(window)")
        }
        // No window given: the instance's own; none at all: the frame's range, ends at 0 and 255.
        let own = try DisplayFrame.render(image, frame: 0, lut: lut, window: nil, defaultWindow: VOIWindow(center: 40, width: 80))
        #expect(own.pixels == (try DisplayFrame.render(image, frame: 0, lut: lut, window: VOIWindow(center: 40, width: 80), defaultWindow: nil)).pixels)
        let range = try DisplayFrame.render(image, frame: 0, lut: lut, window: nil, defaultWindow: nil)
        #expect(range.pixels.min() == 0 && range.pixels.max() == 255)
        #expect(range.pixels[stored.firstIndex(of: -2000)!] == 0 && range.pixels[stored.firstIndex(of: 30000)!] == 255)
    }

    @Test func monochrome1IsInvertedAndFramesAreSelected() throws {
        let values: [UInt16] = [0, 100, 200, 300, 1000, 1100, 1200, 1300]
        let image = try decoded(.uint16(values), rows: 2, columns: 2, frames: 2, photometric: "MONOCHROME1")
        let window = VOIWindow(center: 650, width: 1300)
        let second = try DisplayFrame.render(image, frame: 1, lut: .identity, window: window, defaultWindow: nil)
        #expect(second.pixels == values[4...].map { 255 - UInt8((window.apply(Double($0)) * 255).rounded()) })
        #expect(throws: ImagingError.self) { try DisplayFrame.render(image, frame: 2, lut: .identity, window: window, defaultWindow: nil) }
    }

    @Test func colourStaysRGBAndEncodesAsPNGAndJPEG() throws {
        let rgb: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128]
        let image = try decoded(.uint8(rgb), rows: 2, columns: 2, photometric: "RGB", samples: 3)
        let frame = try DisplayFrame.render(image, frame: 0, lut: .identity, window: VOIWindow(center: 0, width: 2), defaultWindow: nil)
        #expect(frame.channels == 3 && frame.pixels == rgb, "colour ignores the window")
        #expect(Array(try frame.png().prefix(8)) == PNGEncoder.signature)
        let jpeg = try frame.jpeg(quality: 95)
        #expect(jpeg.prefix(2) == [0xFF, 0xD8] && jpeg.suffix(2) == [0xFF, 0xD9])
        // Read back with the grid's own JPEG decoder: the colours survive (lossy, within a few levels).
        let grey = try DisplayFrame.render(try decoded(.uint8((0..<64).map { UInt8($0 * 4) }), rows: 8, columns: 8), frame: 0, lut: .identity,
                                           window: VOIWindow(center: 127.5, width: 256), defaultWindow: nil)
        let stream = try grey.jpeg(quality: 100)
        var decodedJPEG = [UInt8](repeating: 0, count: 64)
        let descriptor = FrameDescriptor(rows: 8, columns: 8, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, isSigned: false, photometricInterpretation: "MONOCHROME2")
        _ = try stream.withUnsafeBytes { input in
            try decodedJPEG.withUnsafeMutableBytes { output in try JPEGTurboCodec().decode(input, into: output, descriptor: descriptor) }
        }
        let difference = zip(decodedJPEG, grey.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(difference <= 3)
        #expect(throws: CodecError.self) { try JPEGBaselineEncoder.encode([1, 2, 3], width: 2, height: 2, components: 1) }
    }
}
