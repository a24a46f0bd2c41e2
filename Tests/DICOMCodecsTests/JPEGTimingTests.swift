import DICOMCodecs
import Foundation
import Testing

/// Decode speed, printed (not asserted: machines differ). Enabled by RADGRID_CODEC_TIMING=1;
/// RADGRID_JPEG_TIMING_STREAM names an extra stream (e.g. the 512×512 CT frame that
/// scripts/jpeg-timing.sh makes, with RADGRID_JPEG_TIMING_SHAPE=rows,cols,spp,bitsAllocated,bitsStored,signed).
/// Release-mode figures come from scripts/jpeg-timing.sh; this runs in whatever build the tests use.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["RADGRID_CODEC_TIMING"] == "1"))
struct JPEGTimingTests {
    static func measure(_ label: String, _ stream: [UInt8], _ d: FrameDescriptor) throws {
        var out = [UInt8](repeating: 0, count: d.frameBytes)
        let codec = SwiftJPEGCodec()
        var best = Double.infinity
        let start = Date()
        var runs = 0
        while runs < 3 || Date().timeIntervalSince(start) < 1.5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try stream.withUnsafeBytes { i in
                try out.withUnsafeMutableBytes { o in try codec.decode(i, into: o, descriptor: d) }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            runs += 1
        }
        print(String(format: "JPEG timing %@: %d runs, best %.3f ms, %.1f MB/s of decoded pixels",
                     label, runs, best * 1000, Double(d.frameBytes) / 1e6 / best))
    }

    @Test func decodeSpeed() throws {
        for name in ["lossless-sv1-ct", "real-extended12", "extended12-q90-ct12", "lossless-sv1-rgb"] {
            let f = JPEGFixtures.named(name)
            try Self.measure(name, f.stream, f.descriptor)
        }
        let env = ProcessInfo.processInfo.environment
        if let path = env["RADGRID_JPEG_TIMING_STREAM"] {
            let shape = (env["RADGRID_JPEG_TIMING_SHAPE"] ?? "512,512,1,16,16,1").split(separator: ",").map { Int($0)! }
            let d = FrameDescriptor(rows: shape[0], columns: shape[1], samplesPerPixel: shape[2], bitsAllocated: shape[3],
                                    bitsStored: shape[4], isSigned: shape[5] == 1, photometricInterpretation: "MONOCHROME2")
            try Self.measure(path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), d)
        }
    }
}
