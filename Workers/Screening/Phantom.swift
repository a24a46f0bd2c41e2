import DICOM
import Imaging

/// What to generate.
public struct PhantomSpec: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable { case head, chest }

    public var kind: Kind
    public var width: Int
    public var height: Int
    public var slices: Int
    /// In-plane pixel spacing and slice spacing, mm.
    public var pixelSpacing: Double
    public var sliceSpacing: Double
    /// Lesion (head: hyperdense blood; chest: nodule) diameter in mm; 0 = none.
    public var lesionDiameterMM: Double
    /// Head: HU above local brain; chest: absolute nodule HU. nil = drawn from a realistic range.
    public var lesionContrastHU: Double?
    /// Gaussian noise sigma in HU; nil = drawn from a realistic range.
    public var noiseHU: Double?
    /// Anatomical mimics (calcifications, dense sinus, end-on vessels) drawn at their usual rates.
    public var mimics: Bool
    public var seed: UInt64
    /// Harder set (for model training and validation): the generator draws its own geometry
    /// (pixel and slice spacing, matrix and slice count; `width`...`sliceSpacing` are replaced,
    /// the phantom's `spec` holds what was drawn), shifts the anatomy, widens noise and lesion
    /// contrast, draws lesions as random ellipsoids and adds more distractors.
    public var hard: Bool

    public init(kind: Kind, width: Int? = nil, height: Int? = nil, slices: Int? = nil, pixelSpacing: Double? = nil, sliceSpacing: Double? = nil,
                lesionDiameterMM: Double = 0, lesionContrastHU: Double? = nil, noiseHU: Double? = nil, mimics: Bool = true, seed: UInt64 = 1,
                hard: Bool = false) {
        self.kind = kind
        switch kind {
        case .head:
            self.width = width ?? 160; self.height = height ?? 160; self.slices = slices ?? 28
            self.pixelSpacing = pixelSpacing ?? 1.5; self.sliceSpacing = sliceSpacing ?? 5
        case .chest:
            self.width = width ?? 160; self.height = height ?? 160; self.slices = slices ?? 64
            self.pixelSpacing = pixelSpacing ?? 2.2; self.sliceSpacing = sliceSpacing ?? 2.5
        }
        self.lesionDiameterMM = lesionDiameterMM
        self.lesionContrastHU = lesionContrastHU
        self.noiseHU = noiseHU
        self.mimics = mimics
        self.seed = seed
        self.hard = hard
    }

    private enum CodingKeys: String, CodingKey {
        case kind, width, height, slices, pixelSpacing, sliceSpacing, lesionDiameterMM, lesionContrastHU, noiseHU, mimics, seed, hard
    }

    // Written out so specs saved before `hard` existed still decode (as not hard).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        width = try c.decode(Int.self, forKey: .width)
        height = try c.decode(Int.self, forKey: .height)
        slices = try c.decode(Int.self, forKey: .slices)
        pixelSpacing = try c.decode(Double.self, forKey: .pixelSpacing)
        sliceSpacing = try c.decode(Double.self, forKey: .sliceSpacing)
        lesionDiameterMM = try c.decode(Double.self, forKey: .lesionDiameterMM)
        lesionContrastHU = try c.decodeIfPresent(Double.self, forKey: .lesionContrastHU)
        noiseHU = try c.decodeIfPresent(Double.self, forKey: .noiseHU)
        mimics = try c.decode(Bool.self, forKey: .mimics)
        seed = try c.decode(UInt64.self, forKey: .seed)
        hard = try c.decodeIfPresent(Bool.self, forKey: .hard) ?? false
    }

    /// Hard mode: spacing drawn per series, slice count and matrix chosen so the covered
    /// z-extent and field of view stay those of the default geometry. Drawn from a stream of
    /// its own (seed only), so generating again from the drawn spec gives the same phantom.
    func drawnGeometry() -> PhantomSpec {
        var g = Xoshiro256(seed: seed ^ 0x6A09_E667_F3BC_C908)
        var out = self
        let (psRange, ssRange, fovMM, zExtentMM): ((Double, Double), (Double, Double), Double, Double) = switch kind {
        case .head: ((1.2, 1.8), (2.5, 6), 160 * 1.5, 28 * 5)
        case .chest: ((1.8, 2.8), (1.25, 5), 160 * 2.2, 64 * 2.5)
        }
        out.pixelSpacing = g.uniform(psRange.0, psRange.1)
        out.sliceSpacing = g.uniform(ssRange.0, ssRange.1)
        out.width = Int((fovMM / out.pixelSpacing).rounded())
        out.height = out.width
        out.slices = max(8, Int((zExtentMM / out.sliceSpacing).rounded()))
        return out
    }

    /// Small volumes for unit tests (same anatomy in mm, coarser voxels).
    public static func small(_ kind: Kind, lesionMM: Double = 0, seed: UInt64 = 1) -> PhantomSpec {
        switch kind {
        case .head: PhantomSpec(kind: .head, width: 64, height: 64, slices: 14, pixelSpacing: 3.5, sliceSpacing: 10, lesionDiameterMM: lesionMM, seed: seed)
        case .chest: PhantomSpec(kind: .chest, width: 80, height: 80, slices: 24, pixelSpacing: 4.4, sliceSpacing: 6, lesionDiameterMM: lesionMM, seed: seed)
        }
    }
}

/// A lesion placed in a phantom (ground truth), mm in phantom coordinates (volume centre at 0).
public struct PhantomLesion: Sendable, Codable, Equatable {
    public var center: [Double]
    public var diameterMM: Double
    public var hu: Double
    /// Semi-axes (x, y, z) of the ellipsoid drawn, mm (slice labels need the z extent).
    public var radiiMM: [Double]? = nil
}

/// A generated series: stored Int16 slices (rescale intercept -1024) with geometry, like a
/// scanner would write, plus the ground truth.
public struct Phantom: Sendable {
    public var spec: PhantomSpec
    public var slices: [SliceInput]
    public var lesions: [PhantomLesion]
    public var info: SeriesInfo
    /// Mimics placed (for reporting): "pinealCalcification", "denseSinus", "endOnVessel", ...
    public var mimicsPlaced: [String]

    public static let rescaleIntercept = -1024.0

    /// Runs the series through the preprocessor (HU tensor, native size) as screening would.
    public func preprocessed(options: PreprocessOptions = .screening) throws -> PreprocessedSeries {
        try SeriesPreprocessor.process(slices, info: info, options: options)
    }

    public static func generate(_ spec: PhantomSpec) -> Phantom {
        let spec = spec.hard ? spec.drawnGeometry() : spec
        var rng = Xoshiro256(seed: spec.seed)
        var scene = Scene()
        var lesions: [PhantomLesion] = []
        var mimics: [String] = []
        let noise: Double
        // The non-hard path must draw exactly the numbers it always drew (tests and benchmarks pin its output).
        switch (spec.kind, spec.hard) {
        case (.head, false): noise = spec.noiseHU ?? rng.uniform(3, 8); buildHead(spec, &rng, &scene, &lesions, &mimics)
        case (.chest, false): noise = spec.noiseHU ?? rng.uniform(12, 30); buildChest(spec, &rng, &scene, &lesions, &mimics)
        case (.head, true): noise = spec.noiseHU ?? rng.uniform(2, 10); buildHead(spec, &rng, &scene, &lesions, &mimics)
        case (.chest, true): noise = spec.noiseHU ?? rng.uniform(10, 40); buildChest(spec, &rng, &scene, &lesions, &mimics)
        }
        if spec.hard {
            // Patients are not centred exactly: move the whole anatomy (and the ground truth).
            // A stream of its own, so switching mimics or lesions off does not move the patient.
            var g = Xoshiro256(seed: spec.seed ^ 0xBB67_AE85_84CA_A73B)
            let d = (g.uniform(-12, 12), g.uniform(-12, 12))
            scene.shapes = scene.shapes.map { $0.shifted(d.0, d.1) }
            for i in lesions.indices { lesions[i].center[0] += d.0; lesions[i].center[1] += d.1 }
        }
        let slices = render(spec, scene, noise: noise, rng: &rng)
        let uid = "2.25.\(spec.seed % 1_000_000_007)\(spec.kind == .head ? 1 : 2)\(Int(spec.lesionDiameterMM * 10))"
        let info = SeriesInfo(seriesInstanceUID: uid, modality: "CT", bodyPart: spec.kind == .head ? "HEAD" : "CHEST",
                              tags: ["SeriesDescription": "RadGrid synthetic \(spec.kind.rawValue) phantom"])
        return Phantom(spec: spec, slices: slices, lesions: lesions, info: info, mimicsPlaced: mimics)
    }

    /// Slice z positions (mm, phantom coordinates) in the preprocessor's sorted order (by
    /// position along the slice normal, here +z).
    public var sortedSliceZ: [Double] {
        slices.compactMap { $0.header.imagePosition?[2] }.sorted()
    }

    /// Per sorted slice, for training slice classifiers: 1 when the slice centre lies within
    /// `core` x the lesion's z half-extent of its centre, -1 (ambiguous, partial volume) up to
    /// the half-extent plus half the slice spacing, else 0. Several lesions: the highest label.
    public func sliceLabels(core: Double = 0.6) -> [Int] {
        let zs = sortedSliceZ
        var out = [Int](repeating: 0, count: zs.count)
        for l in lesions {
            let rz = l.radiiMM?[2] ?? l.diameterMM / 2
            for (k, z) in zs.enumerated() {
                let d = abs(z - l.center[2])
                let label = d <= core * rz ? 1 : (d <= rz + spec.sliceSpacing / 2 ? -1 : 0)
                if label == 1 || (label == -1 && out[k] == 0) { out[k] = label }
            }
        }
        return out
    }

    // MARK: Scene

    enum Shape: Sendable {
        case ellipsoid(c: (Double, Double, Double), r: (Double, Double, Double), hu: Double)
        case capsule(p0: (Double, Double, Double), p1: (Double, Double, Double), radius: Double, hu: Double)
        /// Part of an ellipsoidal shell: between the ellipsoid `r` and the one `thickness` mm
        /// inside it, over in-plane angles `angle` (radians, atan2(y, x) about `c`) and z in `z`.
        case shell(c: (Double, Double, Double), r: (Double, Double, Double), thickness: Double, angle: (Double, Double), z: (Double, Double), hu: Double)

        func shifted(_ dx: Double, _ dy: Double) -> Shape {
            switch self {
            case let .ellipsoid(c, r, hu): .ellipsoid(c: (c.0 + dx, c.1 + dy, c.2), r: r, hu: hu)
            case let .capsule(p0, p1, radius, hu): .capsule(p0: (p0.0 + dx, p0.1 + dy, p0.2), p1: (p1.0 + dx, p1.1 + dy, p1.2), radius: radius, hu: hu)
            case let .shell(c, r, t, a, z, hu): .shell(c: (c.0 + dx, c.1 + dy, c.2), r: r, thickness: t, angle: a, z: z, hu: hu)
            }
        }
    }

    struct Scene: Sendable { var shapes: [Shape] = [] }

    static func buildHead(_ s: PhantomSpec, _ rng: inout Xoshiro256, _ scene: inout Scene, _ lesions: inout [PhantomLesion], _ mimics: inout [String]) {
        let z0 = -35.0
        let brain = rng.uniform(29, 37)
        let bone = rng.uniform(900, 1300)
        var sh: [Shape] = []
        defer { scene.shapes = sh }
        sh.append(.ellipsoid(c: (0, 0, z0), r: (78, 96, 105), hu: 30))          // scalp
        sh.append(.ellipsoid(c: (0, 0, z0), r: (73, 91, 100), hu: bone))        // skull
        sh.append(.ellipsoid(c: (0, 0, z0), r: (67, 85, 94), hu: 8))            // CSF rim
        sh.append(.ellipsoid(c: (0, 0, z0), r: (66, 84, 93), hu: brain + 5))    // grey matter
        sh.append(.ellipsoid(c: (0, 0, z0), r: (54, 70, 78), hu: brain - 3))    // white matter
        for side in [-1.0, 1.0] {
            sh.append(.ellipsoid(c: (side * 9, -4, z0 + 38), r: (5, 20, 11), hu: 8)) // lateral ventricles
        }
        sh.append(.ellipsoid(c: (0, 0, z0 + 45), r: (1.2, 72, 50), hu: rng.uniform(45, 65))) // falx
        if s.mimics {
            if rng.chance(0.6) {
                let r = rng.uniform(2, 4.5)
                sh.append(.ellipsoid(c: (0, 22, z0 + 30), r: (r, r, r), hu: rng.uniform(250, 600)))
                mimics.append("pinealCalcification")
            }
            if rng.chance(0.4) {
                for side in [-1.0, 1.0] {
                    let r = rng.uniform(1.5, 3)
                    sh.append(.ellipsoid(c: (side * 9, 10, z0 + 38), r: (r, r, r), hu: rng.uniform(130, 300)))
                }
                mimics.append("choroidCalcification")
            }
            if rng.chance(0.25) {
                // Dense superior sagittal sinus (haematocrit, dehydration): a classic mimic.
                sh.append(.ellipsoid(c: (0, 83, z0 + 55), r: (3.5, 3.5, 35), hu: rng.uniform(50, 64)))
                mimics.append("denseSinus")
            }
            if s.hard { hardHeadMimics(s, brain: brain, z0: z0, &rng, &sh, &mimics) }
        }
        if s.lesionDiameterMM > 0 {
            let r = s.lesionDiameterMM / 2
            // Inside the white/grey matter, away from the midline structures.
            var c = (0.0, 0.0, 0.0)
            let zLo = max(z0 - 10, -Double(s.slices - 1) / 2 * s.sliceSpacing + r + s.sliceSpacing)
            let zHi = min(z0 + 70, Double(s.slices - 1) / 2 * s.sliceSpacing - r - s.sliceSpacing)
            for _ in 0..<100 {
                c = (rng.uniform(-48, 48), rng.uniform(-62, 62), rng.uniform(zLo, max(zLo, zHi)))
                let q = pow(c.0 / (56 - r), 2) + pow(c.1 / (74 - r), 2) + pow((c.2 - z0) / (84 - r), 2)
                if q < 1 && abs(c.0) > r + 4 { break }
            }
            let hu = brain + (s.lesionContrastHU ?? (s.hard ? rng.uniform(8, 60) : rng.uniform(12, 50)))
            let k = s.hard ? (0.7, 1.3) : (0.8, 1.2)
            let shape = (r * rng.uniform(k.0, k.1), r * rng.uniform(k.0, k.1), r * rng.uniform(k.0, k.1))
            sh.append(.ellipsoid(c: c, r: shape, hu: hu))
            lesions.append(PhantomLesion(center: [c.0, c.1, c.2], diameterMM: s.lesionDiameterMM, hu: hu, radiiMM: [shape.0, shape.1, shape.2]))
        }
    }

    static func buildChest(_ s: PhantomSpec, _ rng: inout Xoshiro256, _ scene: inout Scene, _ lesions: inout [PhantomLesion], _ mimics: inout [String]) {
        var sh: [Shape] = []
        defer { scene.shapes = sh }
        let lungHU = rng.uniform(-880, -820)
        sh.append(.ellipsoid(c: (0, 5, 0), r: (165, 118, 1000), hu: -100))     // body with subcutaneous fat
        sh.append(.ellipsoid(c: (0, 5, 0), r: (150, 104, 1000), hu: 40))      // muscle / organs
        let lungC: [(Double, Double, Double)] = [(-68, -2, 20), (68, -2, 20)]
        let lungR = (52.0, 78.0, 140.0)
        for c in lungC { sh.append(.ellipsoid(c: c, r: lungR, hu: lungHU)) }
        sh.append(.ellipsoid(c: (12, -20, -55), r: (55, 48, 55), hu: 40))      // heart
        sh.append(.ellipsoid(c: (0, 88, 0), r: (17, 17, 1000), hu: 350))       // vertebral bodies
        sh.append(.ellipsoid(c: (0, -95, 0), r: (25, 6, 1000), hu: 300))       // sternum
        // Vessel trees from each hilum.
        for (k, side) in [-1.0, 1.0].enumerated() {
            let hilum = (side * 30, -5.0, 10.0)
            let trunks = 6 + Int(rng.uniform(0, 5))
            for _ in 0..<trunks {
                var p0 = hilum
                p0.2 += rng.uniform(-40, 40)
                var dir = (side * rng.uniform(0.5, 1), rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8))
                var radius = rng.uniform(2.5, 4.5)
                for _ in 0..<3 {
                    let len = rng.uniform(25, 50)
                    let n = (dir.0 * dir.0 + dir.1 * dir.1 + dir.2 * dir.2).squareRoot()
                    let p1 = (p0.0 + dir.0 / n * len, p0.1 + dir.1 / n * len, p0.2 + dir.2 / n * len)
                    sh.append(.capsule(p0: p0, p1: p1, radius: radius, hu: 40))
                    // a side branch
                    let b = (p1.0 + rng.uniform(-20, 20), p1.1 + rng.uniform(-20, 20), p1.2 + rng.uniform(-20, 20))
                    sh.append(.capsule(p0: p1, p1: b, radius: max(2, radius * 0.7), hu: 40))
                    p0 = p1
                    dir = (dir.0 + rng.uniform(-0.3, 0.3), dir.1 + rng.uniform(-0.3, 0.3), dir.2 + rng.uniform(-0.3, 0.3))
                    // Vessels thinner than ~2 mm break up at this resolution; the tree stops there.
                    radius = max(2, radius * 0.7)
                }
            }
            _ = k
        }
        if s.mimics && rng.chance(0.3) {
            // A short vessel segment seen end-on: compact on every slice it crosses.
            let c = lungC[Int(rng.uniform(0, 2))]
            let p = (c.0 + rng.uniform(-25, 25), c.1 + rng.uniform(-40, 40), rng.uniform(-40, 40))
            let len = rng.uniform(6, 14)
            sh.append(.capsule(p0: p, p1: (p.0, p.1, p.2 + len), radius: rng.uniform(1.5, 3), hu: 40))
            mimics.append("endOnVessel")
        }
        if s.mimics && s.hard { hardChestMimics(lungC: lungC, lungR: lungR, &rng, &sh, &mimics) }
        if s.lesionDiameterMM > 0 {
            let r = s.lesionDiameterMM / 2
            let c0 = lungC[Int(rng.uniform(0, 2))]
            let zHalf = Double(s.slices - 1) / 2 * s.sliceSpacing
            var c = c0
            for _ in 0..<100 {
                c = (c0.0 + rng.uniform(-1, 1) * (lungR.0 - r - 6), c0.1 + rng.uniform(-1, 1) * (lungR.1 - r - 6),
                     rng.uniform(-zHalf + r + s.sliceSpacing, zHalf - r - s.sliceSpacing))
                let q = pow((c.0 - c0.0) / (lungR.0 - r - 5), 2) + pow((c.1 - c0.1) / (lungR.1 - r - 5), 2) + pow((c.2 - c0.2) / (lungR.2 - r - 5), 2)
                // The heart overlaps the lung ellipsoids: a nodule there is painted over soft
                // tissue and cannot be seen, so hard phantoms keep it clear (1.3 x its radius
                // covers the random shape, plus 4 mm). Default phantoms keep their old draws.
                let g = 1.3 * r + 4
                let inHeart = pow((c.0 - 12) / (55 + g), 2) + pow((c.1 + 20) / (48 + g), 2) + pow((c.2 + 55) / (55 + g), 2) < 1
                if q < 1 && !(s.hard && inHeart) { break }
            }
            let hu: Double
            var radii = (r, r, r)
            if s.hard {
                // Solid or part-solid (ground glass with a core, averaged), any roughly round shape.
                hu = s.lesionContrastHU ?? (rng.chance(0.75) ? rng.uniform(-60, 80) : rng.uniform(-600, -200))
                radii = (r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3))
            } else {
                hu = s.lesionContrastHU ?? (rng.chance(0.75) ? rng.uniform(-40, 60) : rng.uniform(-550, -250))
            }
            sh.append(.ellipsoid(c: c, r: radii, hu: hu))
            lesions.append(PhantomLesion(center: [c.0, c.1, c.2], diameterMM: s.lesionDiameterMM, hu: hu, radiiMM: [radii.0, radii.1, radii.2]))
        }
    }

    /// Head distractors of the hard set, each at its own rate. Drawn after today's mimics so
    /// the order of those draws is unchanged.
    static func hardHeadMimics(_ s: PhantomSpec, brain: Double, z0: Double, _ rng: inout Xoshiro256, _ sh: inout [Shape], _ mimics: inout [String]) {
        // Small parenchymal calcifications (old granulomas, cavernomas): compact and very bright.
        let n = Int(rng.uniform(0, 4))
        for _ in 0..<n {
            var c = (0.0, 0.0, z0)
            for _ in 0..<50 {
                c = (rng.uniform(-50, 50), rng.uniform(-66, 66), z0 + rng.uniform(-5, 75))
                if pow(c.0 / 56, 2) + pow(c.1 / 74, 2) + pow((c.2 - z0) / 84, 2) < 1 { break }
            }
            let r = rng.uniform(1, 3)
            sh.append(.ellipsoid(c: c, r: (r, r, r), hu: rng.uniform(150, 800)))
            mimics.append("parenchymalCalcification")
        }
        if rng.chance(0.35) {
            // Bright rim: partial volume of the inner table over part of the vault, not blood.
            let t = rng.uniform(1, 2.5)
            let a0 = rng.uniform(-Double.pi, Double.pi), span = rng.uniform(0.5, 2)
            let zc = z0 + rng.uniform(0, 70), zh = rng.uniform(10, 35)
            sh.append(.shell(c: (0, 0, z0), r: (67, 85, 94), thickness: t, angle: (a0, a0 + span), z: (zc - zh, zc + zh), hu: rng.uniform(60, 110)))
            mimics.append("brightRim")
        }
        if rng.chance(0.35) {
            // Beam-hardening band between the petrous bones, across the posterior fossa.
            let c = (rng.uniform(-8, 8), rng.uniform(20, 50), z0 + rng.uniform(-10, 5))
            let r = (rng.uniform(30, 50), rng.uniform(1.2, 2.5), rng.uniform(2, 6))
            sh.append(.ellipsoid(c: c, r: r, hu: brain + rng.uniform(10, 35)))
            mimics.append("beamHardeningBand")
        }
    }

    /// Chest distractors of the hard set: more end-on vessels and calcified granulomas.
    static func hardChestMimics(lungC: [(Double, Double, Double)], lungR: (Double, Double, Double), _ rng: inout Xoshiro256,
                                _ sh: inout [Shape], _ mimics: inout [String]) {
        for _ in 0..<3 where rng.chance(0.45) {
            let c = lungC[Int(rng.uniform(0, 2))]
            let p = (c.0 + rng.uniform(-30, 30), c.1 + rng.uniform(-45, 45), rng.uniform(-50, 50))
            let len = rng.uniform(5, 16)
            sh.append(.capsule(p0: p, p1: (p.0 + rng.uniform(-2, 2), p.1 + rng.uniform(-2, 2), p.2 + len), radius: rng.uniform(1.5, 3.5), hu: 40))
            mimics.append("endOnVessel")
        }
        let n = Int(rng.uniform(0, 4))
        for _ in 0..<n {
            let c0 = lungC[Int(rng.uniform(0, 2))]
            let c = (c0.0 + rng.uniform(-0.7, 0.7) * lungR.0, c0.1 + rng.uniform(-0.7, 0.7) * lungR.1, rng.uniform(-70, 70))
            let r = rng.uniform(1, 4)
            sh.append(.ellipsoid(c: c, r: (r, r, r), hu: rng.uniform(250, 900)))
            mimics.append("calcifiedGranuloma")
        }
    }

    // MARK: Rendering

    /// Paints shapes in order (each blends over what is below by its partial-volume coverage),
    /// averaging three sub-slices per slice for through-plane partial volume, then adds
    /// Gaussian noise and stores Int16 with intercept -1024.
    static func render(_ s: PhantomSpec, _ scene: Scene, noise: Double, rng: inout Xoshiro256) -> [SliceInput] {
        let w = s.width, h = s.height, ps = s.pixelSpacing
        let x0 = -Double(w - 1) / 2 * ps, y0 = -Double(h - 1) / 2 * ps
        var acc = [Float](repeating: 0, count: w * h)
        var layer = [Float](repeating: 0, count: w * h)
        var slices: [SliceInput] = []
        slices.reserveCapacity(s.slices)
        let subs = [-1.0 / 3, 0, 1.0 / 3]
        for k in 0..<s.slices {
            let zc = (Double(k) - Double(s.slices - 1) / 2) * s.sliceSpacing
            for i in 0..<acc.count { acc[i] = 0 }
            for dz in subs {
                let z = zc + dz * s.sliceSpacing
                for i in 0..<layer.count { layer[i] = -1000 }
                for shape in scene.shapes { paint(shape, z: z, into: &layer, w: w, h: h, x0: x0, y0: y0, ps: ps) }
                for i in 0..<acc.count { acc[i] += layer[i] / Float(subs.count) }
            }
            var stored = [Int16](repeating: 0, count: w * h)
            for i in 0..<stored.count {
                let v = Double(acc[i]) + noise * rng.normal() - rescaleIntercept
                stored[i] = Int16(max(-32768, min(32767, v.rounded())))
            }
            let header = SliceHeader(imagePosition: [x0, y0, zc], imageOrientation: [1, 0, 0, 0, 1, 0], instanceNumber: k + 1,
                                     pixelSpacing: [ps, ps], sliceThickness: s.sliceSpacing)
            slices.append(SliceInput(pixels: .int16(stored), rows: h, columns: w, modalityLUT: ModalityLUT(slope: 1, intercept: rescaleIntercept),
                                     photometric: .monochrome2, window: s.kind == .head ? WindowPreset.brain.window : WindowPreset.lung.window,
                                     header: header))
        }
        return slices
    }

    static func paint(_ shape: Shape, z: Double, into layer: inout [Float], w: Int, h: Int, x0: Double, y0: Double, ps: Double) {
        let edge = ps
        switch shape {
        case let .ellipsoid(c, r, hu):
            let dz = z - c.2
            let qz = (dz / r.2) * (dz / r.2)
            if qz > 1 + 2 * edge / r.2 { return }
            // In-plane half extents at this z (slightly padded for the soft edge).
            let f = max(0, 1 - qz).squareRoot()
            let ex = r.0 * f + 2 * edge, ey = r.1 * f + 2 * edge
            let xa = max(0, Int(((c.0 - ex) - x0) / ps)), xb = min(w - 1, Int(((c.0 + ex) - x0) / ps) + 1)
            let ya = max(0, Int(((c.1 - ey) - y0) / ps)), yb = min(h - 1, Int(((c.1 + ey) - y0) / ps) + 1)
            if xa > xb || ya > yb { return }
            let a2 = r.0 * r.0, b2 = r.1 * r.1, c2 = r.2 * r.2
            let target = Float(hu)
            for y in ya...yb {
                let dy = y0 + Double(y) * ps - c.1
                for x in xa...xb {
                    let dx = x0 + Double(x) * ps - c.0
                    let q = dx * dx / a2 + dy * dy / b2 + dz * dz / c2
                    let gx = dx / a2, gy = dy / b2, gz = dz / c2
                    let g = (gx * gx + gy * gy + gz * gz).squareRoot()
                    let sd = g > 1e-12 ? (q - 1) / (2 * g) : -1e9
                    let cov = min(1, max(0, 0.5 - sd / edge))
                    if cov > 0 { let i = y * w + x; layer[i] += (target - layer[i]) * Float(cov) }
                }
            }
        case let .capsule(p0, p1, radius, hu):
            let zmin = min(p0.2, p1.2) - radius - edge, zmax = max(p0.2, p1.2) + radius + edge
            if z < zmin || z > zmax { return }
            // Only the part of the segment within reach of this z plane matters.
            var ta = 0.0, tb = 1.0
            let dzs = p1.2 - p0.2
            if abs(dzs) > 1e-9 {
                let u = (z - radius - edge - p0.2) / dzs, v = (z + radius + edge - p0.2) / dzs
                ta = max(0, min(u, v)); tb = min(1, max(u, v))
            }
            let qa = (p0.0 + (p1.0 - p0.0) * ta, p0.1 + (p1.1 - p0.1) * ta)
            let qb = (p0.0 + (p1.0 - p0.0) * tb, p0.1 + (p1.1 - p0.1) * tb)
            let ex0 = min(qa.0, qb.0) - radius - 2 * edge, ex1 = max(qa.0, qb.0) + radius + 2 * edge
            let ey0 = min(qa.1, qb.1) - radius - 2 * edge, ey1 = max(qa.1, qb.1) + radius + 2 * edge
            let xa = max(0, Int((ex0 - x0) / ps)), xb = min(w - 1, Int((ex1 - x0) / ps) + 1)
            let ya = max(0, Int((ey0 - y0) / ps)), yb = min(h - 1, Int((ey1 - y0) / ps) + 1)
            if xa > xb || ya > yb { return }
            let d = (p1.0 - p0.0, p1.1 - p0.1, p1.2 - p0.2)
            let dd = max(1e-12, d.0 * d.0 + d.1 * d.1 + d.2 * d.2)
            let target = Float(hu)
            for y in ya...yb {
                let py = y0 + Double(y) * ps
                for x in xa...xb {
                    let px = x0 + Double(x) * ps
                    let v = (px - p0.0, py - p0.1, z - p0.2)
                    let t = min(1, max(0, (v.0 * d.0 + v.1 * d.1 + v.2 * d.2) / dd))
                    let q = (v.0 - t * d.0, v.1 - t * d.1, v.2 - t * d.2)
                    let sd = (q.0 * q.0 + q.1 * q.1 + q.2 * q.2).squareRoot() - radius
                    let cov = min(1, max(0, 0.5 - sd / edge))
                    if cov > 0 { let i = y * w + x; layer[i] += (target - layer[i]) * Float(cov) }
                }
            }
        case let .shell(c, r, thickness, angle, zr, hu):
            if z < zr.0 || z > zr.1 { return }
            let dz = z - c.2
            let qz = (dz / r.2) * (dz / r.2)
            if qz >= 1 { return }
            let f = (1 - qz).squareRoot()
            let ex = r.0 * f + 2 * edge, ey = r.1 * f + 2 * edge
            let xa = max(0, Int(((c.0 - ex) - x0) / ps)), xb = min(w - 1, Int(((c.0 + ex) - x0) / ps) + 1)
            let ya = max(0, Int(((c.1 - ey) - y0) / ps)), yb = min(h - 1, Int(((c.1 + ey) - y0) / ps) + 1)
            if xa > xb || ya > yb { return }
            let inner = (r.0 - thickness, r.1 - thickness, r.2 - thickness)
            // Signed distance to an ellipsoid surface, first order (as for `.ellipsoid`).
            func sd(_ dx: Double, _ dy: Double, _ r: (Double, Double, Double)) -> Double {
                let a2 = r.0 * r.0, b2 = r.1 * r.1, c2 = r.2 * r.2
                let q = dx * dx / a2 + dy * dy / b2 + dz * dz / c2
                let gx = dx / a2, gy = dy / b2, gz = dz / c2
                let g = (gx * gx + gy * gy + gz * gz).squareRoot()
                return g > 1e-12 ? (q - 1) / (2 * g) : -1e9
            }
            let target = Float(hu)
            for y in ya...yb {
                let dy = y0 + Double(y) * ps - c.1
                for x in xa...xb {
                    let dx = x0 + Double(x) * ps - c.0
                    var a = atan2(dy, dx)
                    if a < angle.0 { a += 2 * Double.pi }
                    if a > angle.1 { continue }
                    let covOuter = min(1, max(0, 0.5 - sd(dx, dy, r) / edge))
                    let covInner = min(1, max(0, 0.5 - sd(dx, dy, inner) / edge))
                    let cov = covOuter - covInner
                    if cov > 0 { let i = y * w + x; layer[i] += (target - layer[i]) * Float(cov) }
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
