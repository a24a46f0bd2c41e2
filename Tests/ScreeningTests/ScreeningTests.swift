import DICOM
import Foundation
import Imaging
import Testing
@testable import Screening

func smallSeries(_ kind: PhantomSpec.Kind, lesionMM: Double = 0, contrast: Double? = nil, seed: UInt64 = 3) throws -> (Phantom, PreprocessedSeries) {
    var spec = PhantomSpec.small(kind, lesionMM: lesionMM, seed: seed)
    spec.lesionContrastHU = contrast
    spec.noiseHU = kind == .head ? 4 : 15
    spec.mimics = false
    let p = Phantom.generate(spec)
    return (p, try p.preprocessed())
}

@Suite struct PhantomTests {
    @Test func prngIsDeterministicAndSeedSensitive() {
        var a = Xoshiro256(seed: 42), b = Xoshiro256(seed: 42), c = Xoshiro256(seed: 43)
        let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
        var n = Xoshiro256(seed: 7)
        let samples = (0..<4000).map { _ in n.normal() }
        let mean = samples.reduce(0, +) / 4000
        let sd = (samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4000).squareRoot()
        #expect(abs(mean) < 0.06)
        #expect(abs(sd - 1) < 0.06)
    }

    @Test func phantomIsDeterministicForASeed() {
        let a = Phantom.generate(.small(.head, lesionMM: 10, seed: 11))
        let b = Phantom.generate(.small(.head, lesionMM: 10, seed: 11))
        let c = Phantom.generate(.small(.head, lesionMM: 10, seed: 12))
        #expect(a.slices.map(\.pixels) == b.slices.map(\.pixels))
        #expect(a.lesions == b.lesions)
        #expect(a.slices.map(\.pixels) != c.slices.map(\.pixels))
    }

    @Test func headPhantomHasPlausibleHU() throws {
        let (_, s) = try smallSeries(.head)
        let v = s.volume
        let mid = v.depth / 2
        #expect(abs(v[0, 0, mid] - -1000) < 30)               // air in the corner
        let centre = v[v.width / 2 + 6, v.height / 2 + 6, mid]  // brain, off the midline
        #expect(centre > 15 && centre < 55)
        #expect(v.voxels.max()! > 700)                          // skull
        #expect(s.volume.spacing.z == 10)
    }

    @Test func chestPhantomHasLungs() throws {
        let (_, s) = try smallSeries(.chest)
        let v = s.volume
        // Right lung, lateral to the vessel trees (x = -95 mm, y = +20 mm): median of a 3x3 patch.
        let x = Int((Double(v.width - 1) / 2 - 95 / 4.4).rounded()), y = Int((Double(v.height - 1) / 2 + 20 / 4.4).rounded())
        var patch: [Float] = []
        for dy in -1...1 { for dx in -1...1 { patch.append(v[x + dx, y + dy, v.depth / 2]) } }
        #expect(patch.sorted()[4] < -700)
        #expect(v[v.width / 2, v.height / 2, v.depth / 2] > -100) // mediastinum / heart
    }

    @Test func phantomDICOMRoundTrip() throws {
        var spec = PhantomSpec.small(.head, lesionMM: 12, seed: 5)
        spec.slices = 6
        let p = Phantom.generate(spec)
        let files = try p.dicomFiles().map { try DICOMFile.read($0) }
        #expect(files.count == 6)
        #expect(files[0].dataSet.string(.bodyPartExamined) == "HEAD")
        let fromFiles = try SeriesPreprocessor.process(files: files.reversed(), options: .screening)
        let inMemory = try p.preprocessed()
        #expect(fromFiles.volume.voxels == inMemory.volume.voxels)
        #expect(fromFiles.info.modality == "CT")
        #expect(fromFiles.volume.spacing == inMemory.volume.spacing)
    }
}

@Suite struct ScreenerTests {
    @Test func headLesionFlaggedCriticalAndCleanHeadNot() throws {
        let screener = HeadHyperdensityScreener()
        let (_, lesion) = try smallSeries(.head, lesionMM: 24, contrast: 35)
        let out = try screener.screen(lesion)
        #expect(!out.findings.isEmpty)
        #expect(out.urgency == .critical)
        #expect(out.findings.first?.code == "ct.head.hyperdensity")
        #expect(out.screenerID == "ct.head.hyperdensity")
        for seed: UInt64 in [3, 4] {
            let (_, clean) = try smallSeries(.head, seed: seed)
            let o = try screener.screen(clean)
            #expect(o.findings.isEmpty, "seed \(seed)")
            #expect(o.urgency == .routine)
            #expect(o.suspicionScore < out.suspicionScore)
        }
    }

    @Test func headLesionLocalised() throws {
        let (p, s) = try smallSeries(.head, lesionMM: 24, contrast: 35)
        let f = try #require(try HeadHyperdensityScreener().screen(s).findings.first)
        let l = p.lesions[0]
        // Lesion centre (mm) -> voxel; must fall in the reported box (1 voxel slack).
        let cx = Int((l.center[0] / 3.5 + Double(s.volume.width - 1) / 2).rounded())
        let cy = Int((l.center[1] / 3.5 + Double(s.volume.height - 1) / 2).rounded())
        let box = try #require(f.boundingBox)
        #expect(cx >= box.x0 - 1 && cx <= box.x1 + 1)
        #expect(cy >= box.y0 - 1 && cy <= box.y1 + 1)
        #expect(f.label.contains(l.center[0] < 0 ? "right" : "left"))
    }

    @Test func chestNoduleFlaggedAndCleanChestNot() throws {
        let screener = ChestNoduleScreener()
        let (_, nodule) = try smallSeries(.chest, lesionMM: 16, contrast: 30, seed: 5)
        let out = try screener.screen(nodule)
        #expect(out.findings.contains { $0.code == "ct.chest.nodule" })
        let (_, clean) = try smallSeries(.chest, seed: 5)
        let o = try screener.screen(clean)
        #expect(o.findings.isEmpty)
        #expect(o.suspicionScore < out.suspicionScore)
    }

    @Test func screenerRefusesClampedTensor() throws {
        let (p, _) = try smallSeries(.head)
        let windowed = try p.preprocessed(options: PreprocessOptions(window: .preset(.brain), output: .window))
        #expect(throws: ScreeningError.self) { try HeadHyperdensityScreener().screen(windowed) }
        // A wide [0,1] range mapping is fine and gives the same verdict as HU.
        let ranged = try p.preprocessed(options: PreprocessOptions(output: .range(-1024, 3071)))
        let a = try HeadHyperdensityScreener().screen(ranged), b = try HeadHyperdensityScreener().screen(try p.preprocessed())
        #expect(a.findings.count == b.findings.count)
    }
}

@Suite struct QCTests {
    @Test func cleanPhantomsPassQC() throws {
        for kind in PhantomSpec.Kind.allCases {
            let (_, s) = try smallSeries(kind)
            #expect(try ImageQCScreener().screen(s).findings.isEmpty, "\(kind)")
        }
    }

    @Test(arguments: QCDefect.allCases)
    func qcCatchesDefect(_ defect: QCDefect) throws {
        var (p, _) = try smallSeries(.head)
        var rng = Xoshiro256(seed: 1)
        if defect == .unevenSpacing {
            p.slices[p.slices.count / 2].header.imagePosition?[2] += 3 // 30% of 10 mm
        } else {
            Validation.inject(defect, into: &p, rng: &rng)
        }
        let out = try ImageQCScreener().screen(try p.preprocessed())
        let expected: [QCDefect: String] = [
            .blankSlice: "qc.constantSlices", .missingSlices: "qc.missingSlices", .unevenSpacing: "qc.unevenSpacing",
            .missingPixelSpacing: "qc.missingPixelSpacing", .wrongRescale: "qc.implausibleHU", .truncatedSeries: "qc.truncated",
            .truncatedPixelData: "qc.truncated", .implausiblePixelSpacing: "qc.implausiblePixelSpacing",
        ]
        #expect(out.findings.map(\.code).contains(expected[defect]!), "\(out.findings.map(\.code))")
        #expect(out.urgency == .routine)
        #expect(out.suspicionScore > 0)
    }

    @Test func blankSeriesReported() throws {
        let slices = (0..<12).map { k in
            SliceInput(pixels: .int16([Int16](repeating: 0, count: 16)), rows: 4, columns: 4,
                       header: SliceHeader(imagePosition: [0, 0, Double(k)], imageOrientation: [1, 0, 0, 0, 1, 0], pixelSpacing: [1, 1]))
        }
        let s = try SeriesPreprocessor.process(slices, info: SeriesInfo(modality: "CT"), options: .screening)
        let codes = try ImageQCScreener().screen(s).findings.map(\.code)
        #expect(codes.contains("qc.blankSeries"))
        #expect(!codes.contains("qc.implausibleHU"))
    }
}

@Suite struct ComponentAndMetricTests {
    @Test func connectedComponents6And26() {
        // 4x4x2: voxel (0,0,0) and (1,1,1) touch only diagonally; (3,3,0)-(3,3,1) share a face.
        var mask = [UInt8](repeating: 0, count: 32)
        let values = (0..<32).map(Float.init)
        func idx(_ x: Int, _ y: Int, _ z: Int) -> Int { (z * 4 + y) * 4 + x }
        mask[idx(0, 0, 0)] = 1; mask[idx(1, 1, 1)] = 1; mask[idx(3, 3, 0)] = 1; mask[idx(3, 3, 1)] = 1
        var cc = ConnectedComponents3D(width: 4, height: 4, depth: 2)
        let c26 = mask.withUnsafeBufferPointer { m in values.withUnsafeBufferPointer { cc.label(mask: m, values: $0, connectivity: 26) } }
        #expect(c26.map(\.count).sorted() == [2, 2])
        let c6 = mask.withUnsafeBufferPointer { m in values.withUnsafeBufferPointer { cc.label(mask: m, values: $0, connectivity: 6) } }
        #expect(c6.map(\.count).sorted() == [1, 1, 2])
        let pair = c6.first { $0.count == 2 }!
        #expect(pair.maxValue == Float(idx(3, 3, 1)))
        #expect(pair.box == BoundingBox(x0: 3, y0: 3, z0: 0, x1: 3, y1: 3, z1: 1))
        #expect(cc.labels[idx(3, 3, 0)] == cc.labels[idx(3, 3, 1)])
    }

    @Test func aucMatchesHandComputed() {
        #expect(Validation.auc([(0.9, true), (0.8, true), (0.1, false), (0.2, false)]) == 1)
        #expect(Validation.auc([(0.1, true), (0.9, false)]) == 0)
        #expect(Validation.auc([(0.5, true), (0.5, false)]) == 0.5)
        // pos {0.8, 0.4}, neg {0.6, 0.2}: pairs won 3 of 4.
        #expect(Validation.auc([(0.8, true), (0.4, true), (0.6, false), (0.2, false)]) == 0.75)
    }

    @Test func smallValidationRunIsDeterministic() throws {
        let a = try Validation.run(screenerID: "qc.image", count: 6, seed: 9, small: true)
        let b = try Validation.run(screenerID: "qc.image", count: 6, seed: 9, small: true)
        #expect(a.truePositives == b.truePositives && a.falsePositives == b.falsePositives && a.auc == b.auc)
        #expect(a.positives == 3)
        #expect(a.specificity == 1)
    }
}

@Suite struct ConfigTests {
    @Test func rulesSelectScreeners() throws {
        let cfg = ScreeningConfig.default
        #expect(cfg.screenerIDs(for: SeriesInfo(modality: "CT", bodyPart: "HEAD")) == ["qc.image", "ct.head.hyperdensity"])
        #expect(cfg.screenerIDs(for: SeriesInfo(modality: "CT", bodyPart: "chest")) == ["qc.image", "ct.chest.nodule"])
        #expect(cfg.screenerIDs(for: SeriesInfo(modality: "MR", bodyPart: "HEAD")) == ["qc.image"])
        #expect(throws: ScreeningError.self) { try cfg.makeScreener("nope") }
    }

    @Test func partialJSONKeepsDefaults() throws {
        let json = #"{"headHyperdensity": {"boneHU": 300, "brainMinHU": -30, "erodeMM": 4.5, "candidateMinHU": 55, "candidateMaxHU": 90, "calcificationHU": 120, "minVolumeML": 0.05, "volumeAtHalfML": 0.12, "volumeWeight": 1.6, "meanHUAtHalf": 55, "contrastWeight": 0.12, "maxElongation": 2.4, "elongationWeight": 4, "findingProbability": 0.5}}"#
        let cfg = try JSONDecoder().decode(ScreeningConfig.self, from: Data(json.utf8))
        #expect(cfg.headHyperdensity.candidateMinHU == 55)
        #expect(cfg.rules == ScreeningConfig.defaultRules)
        #expect(cfg.chestNodule == ChestNoduleConfig())
        let round = try JSONDecoder().decode(ScreeningConfig.self, from: JSONEncoder().encode(ScreeningConfig.default))
        #expect(round == ScreeningConfig.default)
    }

    @Test func opsConfigFileDecodesToDefaults() throws {
        // Ops/screening.json mirrors the defaults in code.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Ops/screening.json")
        let cfg = try JSONDecoder().decode(ScreeningConfig.self, from: Data(contentsOf: url))
        try cfg.validate()
        #expect(cfg == ScreeningConfig.default)
    }

    @Test func engineMergesOutputsAndBatchMatchesSingle() throws {
        let (_, lesion) = try smallSeries(.head, lesionMM: 24, contrast: 35)
        let (_, chest) = try smallSeries(.chest)
        let engine = ScreeningEngine()
        let single = try [lesion, chest].map { try engine.run($0) }
        let batch = try engine.run(batch: [lesion, chest])
        #expect(single.map(\.urgency) == batch.map(\.urgency))
        #expect(single.map { $0.outputs.map(\.screenerID) } == batch.map { $0.outputs.map(\.screenerID) })
        #expect(single[0].urgency == .critical)
        #expect(single[0].outputs.map(\.screenerID) == ["qc.image", "ct.head.hyperdensity"])
        // Codable round trip (stored as JSON with the study).
        let data = try JSONEncoder().encode(single[0])
        let back = try JSONDecoder().decode(ScreeningResult.self, from: data)
        #expect(back.urgency == .critical)
        #expect(back.findings == single[0].findings)
        #expect(Urgency.critical > Urgency.urgent && Urgency.urgent > Urgency.routine)
    }
}
