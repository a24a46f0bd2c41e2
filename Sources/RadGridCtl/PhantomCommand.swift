import ArgumentParser
import Foundation
import Screening

/// `radgridctl phantom`: writes a synthetic CT series (DICOM) for demos and pipeline tests.
struct PhantomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "phantom", abstract: "Write a synthetic head or chest CT series as DICOM files.")

    @Option(help: "head or chest.") var kind: String = "head"
    @Option(name: .customLong("lesion-mm"), help: "Lesion diameter in mm (head: hyperdensity, chest: nodule); 0 for none.") var lesionMM: Double = 0
    @Option(help: "Lesion contrast in HU (head: above brain; chest: nodule HU). Default: drawn at random.") var contrast: Double?
    @Option(help: "Noise sigma in HU. Default: drawn at random.") var noise: Double?
    @Option(help: "Matrix size (square).") var size: Int?
    @Option(help: "Number of slices.") var slices: Int?
    @Option(help: "PRNG seed.") var seed: UInt64 = 1
    @Flag(help: "No calcifications / dense sinus / end-on vessel mimics.") var noMimics = false
    @Option(help: "Output directory.") var out: String

    func run() throws {
        guard let k = PhantomSpec.Kind(rawValue: kind) else { throw ValidationError("--kind must be head or chest") }
        let spec = PhantomSpec(kind: k, width: size, height: size, slices: slices,
                               pixelSpacing: size.map { (k == .head ? 240.0 : 352.0) / Double($0) },
                               lesionDiameterMM: lesionMM, lesionContrastHU: contrast, noiseHU: noise, mimics: !noMimics, seed: seed)
        let phantom = Phantom.generate(spec)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let files = try phantom.dicomFiles()
        for (i, f) in files.enumerated() {
            let name = String(format: "%@/%@-%04d.dcm", out, kind, i + 1)
            try Data(f).write(to: URL(fileURLWithPath: name))
        }
        print("wrote \(files.count) slices (\(spec.width)x\(spec.height), \(spec.pixelSpacing) mm, \(spec.sliceSpacing) mm) to \(out)")
        for l in phantom.lesions { print("lesion: diameter \(l.diameterMM) mm, \(Int(l.hu)) HU at \(l.center.map { Int($0) }) mm") }
        if !phantom.mimicsPlaced.isEmpty { print("mimics: \(phantom.mimicsPlaced.joined(separator: ", "))") }
    }
}
