import DICOM
import Foundation
import RadGridCore
#if canImport(Glibc)
import Glibc
#endif

/// What the `codecs` and `pipeline --jpeg-lossless` benchmarks share: pinning to one core,
/// running the Debian encoders that build test sets, and the pydicom reference process.

enum BenchError: Error, CustomStringConvertible {
    case failed(String)
    var description: String {
        switch self { case .failed(let m): m }
    }
}

enum CPUPinning {
    /// Pins the calling thread (the benchmark runs on it) to `cpu` with sched_setaffinity;
    /// processes it spawns afterwards inherit the mask. Returns false where that fails.
    static func pin(to cpu: Int) -> Bool {
        #if os(Linux)
        // glibc declares sched_setaffinity only under _GNU_SOURCE, which Swift's Glibc module
        // does not define: look it up at run time.
        typealias SetAffinity = @convention(c) (Int32, Int, UnsafeRawPointer) -> Int32
        guard cpu >= 0, cpu < 1024, let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sched_setaffinity") else { return false }
        let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
        var mask = [UInt64](repeating: 0, count: 16) // glibc's cpu_set_t: 1024 bits
        mask[cpu / 64] = UInt64(1) << UInt64(cpu % 64)
        return mask.withUnsafeBytes { setAffinity(0, $0.count, $0.baseAddress!) } == 0
        #else
        return false
        #endif
    }
}

/// Runs command-line tools (dcmtk, GDCM, OpenJPH) to build test files.
enum Tool {
    static func exists(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Runs `name` with `arguments`; throws with the tool's own output when it fails.
    static func run(_ name: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [name] + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let text = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw BenchError.failed("\(name) \(arguments.joined(separator: " ")) exited \(p.terminationStatus): \(String(decoding: text.prefix(500), as: UTF8.self))")
        }
    }
}

/// A scratch directory removed when the benchmark ends (kept with `keep`).
final class ScratchDirectory {
    let url: URL
    let keep: Bool

    init(prefix: String, keep: Bool) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(getpid())-\(WallClock.nowMilliseconds())")
        self.keep = keep
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func folder(_ name: String) throws -> URL {
        let u = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    deinit {
        if keep { print("test files kept in \(url.path)") } else { try? FileManager.default.removeItem(at: url) }
    }
}

/// DICOM files found under a directory (any depth), in path order; files that are not
/// DICOM, or hold no pixel data, are left out.
func dicomFiles(under dir: String) throws -> [(path: String, file: DICOMFile)] {
    let root = URL(fileURLWithPath: dir)
    guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
        throw BenchError.failed("cannot list \(dir)")
    }
    var paths: [String] = []
    for case let u as URL in walker where (try? u.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
        paths.append(u.path)
    }
    var found: [(String, DICOMFile)] = []
    for p in paths.sorted() {
        guard let data = FileManager.default.contents(atPath: p),
              let file = try? DICOMFile.read([UInt8](data)), file.dataSet.contains(.pixelData) else { continue }
        found.append((p, file))
    }
    return found
}

/// Median of a non-empty list.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The reference: one `python3` process with pydicom 3.0.2 and its plugins (from
/// `scripts/pydeps.sh`), pinned to the same core, answering one JSON request per line.
/// Each request is timed inside Python with `time.perf_counter`, so the pipe is not counted.
final class PythonReference {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var pending = Data()
    let scriptURL: URL

    init(pydeps: String, cpu: Int?, scratch: ScratchDirectory) throws {
        guard FileManager.default.fileExists(atPath: pydeps + "/pydicom") else {
            throw BenchError.failed("pydicom is not in \(pydeps): run scripts/pydeps.sh first (or pass --pydeps)")
        }
        scriptURL = scratch.url.appendingPathComponent("reference.py")
        try Data(PythonReference.script.utf8).write(to: scriptURL)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", scriptURL.path] + (cpu.map { ["--cpu", "\($0)"] } ?? [])
        var env = ProcessInfo.processInfo.environment
        env["PYTHONPATH"] = URL(fileURLWithPath: pydeps).standardizedFileURL.path
        // numpy's BLAS must not start threads of its own: one core on each side.
        env["OPENBLAS_NUM_THREADS"] = "1"
        env["OMP_NUM_THREADS"] = "1"
        process.environment = env
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// Sends one request and waits for its answer; an answer with `error` throws.
    func request(_ object: [String: Any]) throws -> [String: Any] {
        var line = try JSONSerialization.data(withJSONObject: object)
        line.append(0x0A)
        try input.fileHandleForWriting.write(contentsOf: line)
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let answer = pending[pending.startIndex..<nl]
                pending = Data(pending[(nl + 1)...])
                guard let obj = try JSONSerialization.jsonObject(with: answer) as? [String: Any] else {
                    throw BenchError.failed("reference answered something that is not a JSON object")
                }
                if let e = obj["error"] as? String { throw BenchError.failed("reference: \(e)") }
                return obj
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw BenchError.failed("the python3 reference exited (status \(process.isRunning ? "running" : "\(process.terminationStatus)"))") }
            pending.append(chunk)
        }
    }

    /// The reference script. pydicom's `pixel_array(ds)` decodes anew on every call (the
    /// `Dataset.pixel_array` property would return its cached array after the first).
    static let script = #"""
import io, json, math, os, sys, time, traceback
if "--cpu" in sys.argv:
    os.sched_setaffinity(0, {int(sys.argv[sys.argv.index("--cpu") + 1])})
import numpy as np
import pydicom
from pydicom import dcmread
from pydicom.pixels import get_decoder, pixel_array
try:
    import zstandard
except ImportError:
    zstandard = None

def version(module):
    try:
        from importlib.metadata import version as v
        return v(module)
    except Exception:
        return None

def hello(req):
    return {"python": sys.version.split()[0], "pydicom": pydicom.__version__, "numpy": np.__version__,
            "pylibjpeg": version("pylibjpeg"), "pylibjpeg-libjpeg": version("pylibjpeg-libjpeg"),
            "pylibjpeg-openjpeg": version("pylibjpeg-openjpeg"), "pylibjpeg-rle": version("pylibjpeg-rle"),
            "pyjpegls": version("pyjpegls"), "zstandard": version("zstandard") if zstandard else None,
            "affinity": sorted(os.sched_getaffinity(0))}

def dump(path, arr):
    arr = np.ascontiguousarray(arr)
    with open(path, "wb") as f:
        f.write(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())

sets = {}

# codecs: decode the same files with every plugin pydicom has for their transfer syntax.
def load(req):
    datasets = [dcmread(p) for p in req["files"]]
    uid = datasets[0].file_meta.TransferSyntaxUID
    names = list(get_decoder(uid).available_plugins) if uid.is_compressed else [""]
    plugins, nbytes, first = {}, None, None
    for name in names:
        try:
            arrays = [pixel_array(ds, decoding_plugin=name) for ds in datasets]  # also the warm-up
        except Exception as e:
            plugins[name or "native"] = {"error": (type(e).__name__ + ": " + str(e))[:300]}
            continue
        plugins[name or "native"] = {"ok": True}
        if first is None:
            nbytes = sum(a.nbytes for a in arrays)
            first = arrays[0]
    sets[req["id"]] = datasets
    if first is not None and req.get("dump"):
        dump(req["dump"], first)
    return {"plugins": plugins, "decoded_bytes": nbytes, "dtype": None if first is None else str(first.dtype)}

def time_decode(req):
    datasets = sets[req["id"]]
    plugin = "" if req["plugin"] == "native" else req["plugin"]
    seconds = []
    for _ in range(req.get("rounds", 1)):
        t0 = time.perf_counter()
        for ds in datasets:
            pixel_array(ds, decoding_plugin=plugin)
        seconds.append(time.perf_counter() - t0)
    return {"seconds": seconds}

# pipeline: what the worker does per instance, the numpy way.
weights = {}
def area_weights(n, m):
    # Output o averages source [o*n/m, (o+1)*n/m), fractional overlaps weighted.
    if (n, m) not in weights:
        s = n / m
        w = np.zeros((m, n), np.float32)
        for o in range(m):
            lo, hi = o * s, (o + 1) * s
            for i in range(int(math.floor(lo)), min(n - 1, int(math.floor(hi - 1e-9))) + 1):
                w[o, i] = (min(hi, i + 1) - max(lo, i)) / s
        weights[(n, m)] = w
    return weights[(n, m)]

def downsample(hu, h, w):
    rows, cols = hu.shape
    if rows % h == 0 and cols % w == 0:
        return hu.reshape(h, rows // h, w, cols // w).mean(axis=(1, 3), dtype=np.float32)
    return area_weights(rows, h) @ hu @ area_weights(cols, w).T

def instance(blob, dctx, max_size, stages):
    t0 = time.perf_counter()
    raw = dctx.decompress(blob, max_output_size=1 << 30) if dctx else blob
    t1 = time.perf_counter()
    ds = dcmread(io.BytesIO(raw))
    t2 = time.perf_counter()
    arr = ds.pixel_array
    t3 = time.perf_counter()
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    hu = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    rows, cols = hu.shape
    if cols > max_size or rows > max_size:
        scale = max_size / max(cols, rows)
        w = max(1, int(math.floor(cols * scale + 0.5)))
        h = max(1, int(math.floor(rows * scale + 0.5)))
        hu = downsample(hu, h, w)
    out = np.clip(np.trunc(hu + np.copysign(np.float32(0.5), hu)), -32768, 32767).astype(np.int16)
    t4 = time.perf_counter()
    stages[0] += t1 - t0; stages[1] += t2 - t1; stages[2] += t3 - t2; stages[3] += t4 - t3
    return out

def pipeline_load(req):
    if req.get("zstd") and zstandard is None:
        return {"error": "zstandard is not installed in the pydeps folder"}
    blobs = [open(p, "rb").read() for p in req["files"]]
    dctx = zstandard.ZstdDecompressor() if req.get("zstd") else None
    sets[req["id"]] = (blobs, dctx, req["max_size"])
    stages = [0.0] * 4
    first = [instance(b, dctx, req["max_size"], stages) for b in blobs][0]  # warm-up
    if req.get("dump"):
        dump(req["dump"], first)
    return {"shape": list(first.shape)}

def pipeline_time(req):
    blobs, dctx, max_size = sets[req["id"]]
    seconds, stages = [], [0.0] * 4
    for _ in range(req.get("rounds", 1)):
        t0 = time.perf_counter()
        for b in blobs:
            instance(b, dctx, max_size, stages)
        seconds.append(time.perf_counter() - t0)
    return {"seconds": seconds, "stage_seconds": stages}

ops = {"hello": hello, "load": load, "time": time_decode, "pipeline_load": pipeline_load, "pipeline_time": pipeline_time}
for line in sys.stdin:
    try:
        req = json.loads(line)
        answer = ops[req["op"]](req)
    except Exception as e:
        answer = {"error": (type(e).__name__ + ": " + str(e) + " | " + traceback.format_exc(limit=2).replace("\n", " "))[:800]}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"""#
}

/// Decoded arrays compared value by value: our little-endian bytes against the reference's.
enum ArrayComparison {
    /// nil when the sizes differ; otherwise the largest absolute difference.
    static func maxAbsDifference(_ ours: [UInt8], _ theirs: [UInt8], bytesPerSample: Int, signed: Bool) -> Int? {
        guard ours.count == theirs.count, bytesPerSample == 1 || bytesPerSample == 2 || bytesPerSample == 4 else { return nil }
        var worst = 0
        ours.withUnsafeBytes { a in
            theirs.withUnsafeBytes { b in
                let n = ours.count / bytesPerSample
                for i in 0..<n {
                    var x = 0, y = 0
                    switch (bytesPerSample, signed) {
                    case (1, false): x = Int(a.load(fromByteOffset: i, as: UInt8.self)); y = Int(b.load(fromByteOffset: i, as: UInt8.self))
                    case (1, true): x = Int(a.load(fromByteOffset: i, as: Int8.self)); y = Int(b.load(fromByteOffset: i, as: Int8.self))
                    case (2, false):
                        x = Int(UInt16(littleEndian: a.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                        y = Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    case (2, true):
                        x = Int(Int16(littleEndian: a.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                        y = Int(Int16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                    case (_, false):
                        x = Int(UInt32(littleEndian: a.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                        y = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    case (_, true):
                        x = Int(Int32(littleEndian: a.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                        y = Int(Int32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                    }
                    worst = max(worst, abs(x - y))
                }
            }
        }
        return worst
    }
}
