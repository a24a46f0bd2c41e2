import DICOM
import Foundation
import Imaging
import Testing
@testable import Screening

/// FNV-1a over a phantom's stored pixels, slice positions, ground truth and mimics: any
/// change to the generator's output (or to the random numbers it draws) changes it.
func phantomChecksum(_ p: Phantom) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ v: UInt64) { for k in 0..<8 { h = (h ^ ((v >> (8 * UInt64(k))) & 0xff)) &* 0x100_0000_01b3 } }
    for s in p.slices {
        if case .int16(let a) = s.pixels { for v in a { mix(UInt64(UInt16(bitPattern: v))) } }
        mix(UInt64(s.rows)); mix(UInt64(s.columns))
        for v in s.header.imagePosition ?? [] { mix(v.bitPattern) }
    }
    for l in p.lesions { for v in l.center + [l.diameterMM, l.hu] { mix(v.bitPattern) } }
    for m in p.mimicsPlaced { for b in m.utf8 { mix(UInt64(b)) } }
    return h
}

@Suite struct HardPhantomTests {
    /// Checksums recorded from the generator before hard mode existed (Validation seed
    /// 20261123 full size, seed 77 small): the default path must not change.
    @Test func defaultPhantomsAreUnchanged() {
        let full: [(PhantomSpec.Kind, Int, UInt64)] = [(.head, 0, 15_161_816_239_085_235_220), (.chest, 1, 1_956_981_282_984_132_386)]
        for (kind, i, sum) in full {
            let (spec, _) = Validation.lesionCase(kind: kind, index: i, seed: 20_261_123)
            #expect(phantomChecksum(Phantom.generate(spec)) == sum, "full \(kind) case \(i)")
        }
        let small: [(PhantomSpec.Kind, [UInt64])] = [
            (.head, [9_239_762_258_403_857_530, 8_623_410_534_570_283_416, 18_336_077_173_232_060_227, 5_943_302_806_727_402_614]),
            (.chest, [16_883_370_320_915_617_353, 10_509_335_299_857_660_134, 8_853_587_779_589_861_058, 3_468_182_735_256_412_950]),
        ]
        for (kind, sums) in small {
            for (i, sum) in sums.enumerated() {
                let (spec, _) = Validation.lesionCase(kind: kind, index: i, seed: 77, small: true)
                #expect(phantomChecksum(Phantom.generate(spec)) == sum, "small \(kind) case \(i)")
            }
        }
    }

    @Test func specDecodesWithoutHardKey() throws {
        var spec = PhantomSpec(kind: .chest, lesionDiameterMM: 8, seed: 5)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(spec)) as! [String: Any]
        json.removeValue(forKey: "hard")
        let old = try JSONDecoder().decode(PhantomSpec.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old == spec)
        spec.hard = true
        #expect(try JSONDecoder().decode(PhantomSpec.self, from: JSONEncoder().encode(spec)) == spec)
    }

    @Test(arguments: PhantomSpec.Kind.allCases)
    func hardPhantomsAreDeterministicAndVaryGeometry(kind: PhantomSpec.Kind) {
        let (s0, _) = Validation.lesionCase(kind: kind, index: 0, seed: 31, hard: true)
        let a = Phantom.generate(s0), b = Phantom.generate(s0)
        #expect(phantomChecksum(a) == phantomChecksum(b))
        // The returned spec holds the drawn geometry; generating from it gives the same series.
        #expect(phantomChecksum(Phantom.generate(a.spec)) == phantomChecksum(a))

        var spacings = Set<Double>(), counts = Set<Int>()
        let (psR, ssR, fov, zExt): ((Double, Double), (Double, Double), Double, Double) = kind == .head
            ? ((1.2, 1.8), (2.5, 6), 240, 140) : ((1.8, 2.8), (1.25, 5), 352, 160)
        for i in 0..<6 {
            let (spec, _) = Validation.lesionCase(kind: kind, index: i, seed: 31, hard: true)
            let drawn = spec.drawnGeometry()
            #expect(drawn.pixelSpacing >= psR.0 && drawn.pixelSpacing <= psR.1)
            #expect(drawn.sliceSpacing >= ssR.0 && drawn.sliceSpacing <= ssR.1)
            #expect(abs(Double(drawn.width) * drawn.pixelSpacing - fov) <= drawn.pixelSpacing)
            #expect(abs(Double(drawn.slices) * drawn.sliceSpacing - zExt) <= drawn.sliceSpacing)
            spacings.insert(drawn.pixelSpacing)
            counts.insert(drawn.slices)
        }
        #expect(spacings.count == 6)
        #expect(counts.count >= 3)
        // The slices carry the drawn geometry.
        let h = a.slices[0].header
        #expect(h.pixelSpacing == [a.spec.pixelSpacing, a.spec.pixelSpacing])
        #expect(a.slices.count == a.spec.slices && a.slices[0].columns == a.spec.width)
    }

    /// Distractors reported in `mimicsPlaced` are in the image: the noise-free hard phantom
    /// differs from the same phantom with mimics off exactly when some were placed (the
    /// anatomy shift has a stream of its own), calcifications show as clearly brighter voxels,
    /// and every kind of distractor turns up.
    @Test(arguments: PhantomSpec.Kind.allCases)
    func hardPhantomsCarryTheirDistractors(kind: PhantomSpec.Kind) throws {
        let allowed: Set<String> = kind == .head
            ? ["pinealCalcification", "choroidCalcification", "denseSinus", "parenchymalCalcification", "brightRim", "beamHardeningBand"]
            : ["endOnVessel", "calcifiedGranuloma"]
        var seen = Set<String>()
        for i in 0..<12 {
            var (spec, _) = Validation.lesionCase(kind: kind, index: 2 * i + 1, seed: 41, hard: true)
            spec.noiseHU = 0
            let p = Phantom.generate(spec)
            #expect(Set(p.mimicsPlaced).isSubset(of: allowed))
            seen.formUnion(p.mimicsPlaced)
            spec.mimics = false
            let plain = Phantom.generate(spec)
            #expect(plain.mimicsPlaced.isEmpty)
            // The pixels differ exactly when something was placed (mimics drawn but none placed is possible).
            let differs = p.slices.map(\.pixels) != plain.slices.map(\.pixels)
            #expect(differs == !p.mimicsPlaced.isEmpty, "case \(i): \(p.mimicsPlaced)")
            // Calcified distractors (> 150 HU over soft tissue) show as voxels in that range inside the body.
            let calcified = p.mimicsPlaced.filter { ["parenchymalCalcification", "calcifiedGranuloma"].contains($0) }.count
            if calcified > 0 {
                let a = try p.preprocessed().volume.voxels, b = try plain.preprocessed().volume.voxels
                // Small ones lose contrast to partial volume; still clearly brighter than what was there.
                let brighter = zip(a, b).map { $0.0 - $0.1 }.max() ?? 0
                #expect(brighter > 60, "case \(i): calcifications reported but none visible")
            }
        }
        // Over a dozen cases every kind of distractor turns up at least once.
        #expect(seen == allowed, "seen \(seen.sorted())")
    }

    @Test(arguments: PhantomSpec.Kind.allCases)
    func hardLesionsLieInsideAndLabelsHitTheLesion(kind: PhantomSpec.Kind) throws {
        for i in 0..<6 {
            var (spec, positive) = Validation.lesionCase(kind: kind, index: 2 * i, seed: 53, hard: true)
            #expect(positive)
            // Noise-free twins that differ only in lesion contrast (the contrast, when given, is not
            // drawn, so both draw the same numbers): their difference is the lesion alone.
            spec.noiseHU = 0
            spec.lesionContrastHU = kind == .head ? 60 : 80
            let p = Phantom.generate(spec)
            spec.lesionContrastHU = kind == .head ? 0 : -850
            let twin = Phantom.generate(spec)
            #expect(p.lesions.count == 1 && twin.lesions.count == 1)
            let l = try #require(p.lesions.first)
            #expect(l.center == twin.lesions[0].center)
            let v = try p.preprocessed().volume, w = try twin.preprocessed().volume
            let ps = p.spec.pixelSpacing
            let x = Int((Double(v.width - 1) / 2 + l.center[0] / ps).rounded()), y = Int((Double(v.height - 1) / 2 + l.center[1] / ps).rounded())
            #expect(x >= 0 && x < v.width && y >= 0 && y < v.height, "lesion centre outside the matrix")
            let zs = p.sortedSliceZ
            #expect(l.center[2] > zs.first! && l.center[2] < zs.last!, "lesion centre outside the covered z range")

            let labels = p.sliceLabels()
            #expect(labels.count == v.depth)
            let diff = (0..<v.depth).map { Double(v[x, y, $0] - w[x, y, $0]) }
            let peak = diff.max()!
            #expect(peak > 5, "case \(2 * i): the lesion does not show at its centre")
            // The slice where the lesion shows most is labelled (1, or -1 when no slice centre falls
            // into the lesion core, e.g. a 3 mm lesion between 5 mm slices), and every slice
            // labelled 1 shows a good part of it.
            let brightest = diff.firstIndex(of: peak)!
            #expect(labels[brightest] != 0, "case \(2 * i): brightest slice \(brightest) labelled 0, labels \(labels)")
            for k in labels.indices where labels[k] == 1 { #expect(diff[k] >= 0.5 * peak, "case \(2 * i) slice \(k): \(diff[k]) of \(peak)") }
            // Slices labelled 0 show (almost) nothing of it.
            for k in labels.indices where labels[k] == 0 { #expect(diff[k] < 0.25 * peak, "case \(2 * i) slice \(k): \(diff[k]) of \(peak)") }
        }
    }
}
