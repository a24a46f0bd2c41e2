// Release-mode timing of SwiftJPEGCodec, built by scripts/jpeg-timing.sh with
// `swiftc -O -wmo` from the codec's own sources (not a package product).
import Foundation

let args = CommandLine.arguments
guard args.count >= 9 else {
    print("usage: jpeg-timing FILE ROWS COLUMNS SAMPLES BITS_ALLOCATED BITS_STORED SIGNED PHOTOMETRIC [SECONDS]")
    exit(2)
}
let input = try Data(contentsOf: URL(fileURLWithPath: args[1]))
let descriptor = FrameDescriptor(rows: Int(args[2])!, columns: Int(args[3])!, samplesPerPixel: Int(args[4])!,
                                 bitsAllocated: Int(args[5])!, bitsStored: Int(args[6])!, isSigned: args[7] == "1",
                                 photometricInterpretation: args[8])
let seconds = args.count > 9 ? Double(args[9])! : 3
let codec = SwiftJPEGCodec()
var output = [UInt8](repeating: 0, count: descriptor.frameBytes)
@MainActor func once() throws {
    _ = try input.withUnsafeBytes { i in try output.withUnsafeMutableBytes { o in try codec.decode(i, into: o, descriptor: descriptor) } }
}
try once()
var best = Double.infinity
var runs = 0
let start = Date()
while Date().timeIntervalSince(start) < seconds {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try once()
    let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    best = min(best, dt)
    runs += 1
}
let mb = Double(descriptor.frameBytes) / 1e6
print(String(format: "swift: %d runs, best %.3f ms, %.1f MB/s of decoded pixels", runs, best * 1000, mb / best))
