// Timing of the DICOM text decoders (scripts/charset-bench.sh builds this file together with
// the four decoder sources, optimised, outside the package). CPU time per decoded value,
// best of 7 rounds.
#if canImport(Glibc)
import Glibc
#endif

func bytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        func v(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
        out.append(v(a) << 4 | v(b))
    }
    return out
}

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

// Values from Tests/DICOMTests/Resources/charset/synthetic.json (and one ASCII name).
let cases: [(name: String, terms: [String], value: [UInt8])] = [
    ("ASCII, no (0008,0005)", [], Array("CompressedSamples^CT1".utf8)),
    ("Latin-1 PN", ["ISO_IR 100"], bytes("4dfc6c6c65725e4ae972f46d65")),
    ("Cyrillic PN", ["ISO_IR 144"], bytes("bbeedae1d5dcd1e3e0d35eb8d2d0dd")),
    ("UTF-8 PN", ["ISO_IR 192"], bytes("57616e675e5869616f446f6e673de78e8b5ee5b08fe69db13d")),
    ("GB18030 PN", ["GB18030"], bytes("57616e675e5869616f446f6e673dcdf55ed0a1b6ab3d")),
    ("Korean ISO 2022 PN", ["", "ISO 2022 IR 149"],
     bytes("486f6e675e47696c646f6e673d1b242943fbf35e1b242943d1ced4d73d1b242943c8ab5e1b242943b1e6b5bf")),
    ("Japanese ISO 2022 PN", ["ISO 2022 IR 13", "ISO 2022 IR 87"],
     bytes("d4cfc0de5ec0dbb33d1b24423b3345441b284a5e1b244242404f3a1b284a3d1b24422464245e24401b284a5e1b2442243f246d24261b284a")),
]

@main
struct CharsetBench {
    static func main() {
        var checksum = 0
        for c in cases {
            let charset = SpecificCharacterSet(terms: c.terms)
            let text = charset.decode(c.value)
            let n = 50_000
            var best = Double.infinity
            for _ in 0..<7 {
                let t0 = cpuSeconds()
                for _ in 0..<n { checksum &+= charset.decode(c.value).utf8.count }
                best = min(best, cpuSeconds() - t0)
            }
            print("\(c.name): \(Int(best / Double(n) * 1e9)) ns (\(c.value.count) bytes -> \(text))")
        }
        let n = 50_000
        let t0 = cpuSeconds()
        for _ in 0..<n { checksum &+= SpecificCharacterSet(terms: ["ISO 2022 IR 13", "ISO 2022 IR 87"]).terms.count }
        print("parse two (0008,0005) terms: \(Int((cpuSeconds() - t0) / Double(n) * 1e9)) ns  [\(checksum % 2)]")
    }
}
