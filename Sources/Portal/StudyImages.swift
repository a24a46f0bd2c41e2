import DICOM
import Foundation
import GridContract
import Imaging
import StudyStore
import Synchronization
import Zstd

/// A small least-recently-used map with a cost bound, shared across requests.
final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    struct State {
        var entries: [Key: (value: Value, cost: Int, tick: UInt64)] = [:]
        var tick: UInt64 = 0
        var cost = 0
    }

    let limit: Int
    let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    func get(_ key: Key) -> Value? {
        state.withLock { state in
            guard var entry = state.entries[key] else { return nil }
            state.tick &+= 1
            entry.tick = state.tick
            state.entries[key] = entry
            return entry.value
        }
    }

    func put(_ key: Key, _ value: Value, cost: Int = 1) {
        guard cost <= limit else { return }
        state.withLock { state in
            state.tick &+= 1
            if let old = state.entries[key] { state.cost -= old.cost }
            state.entries[key] = (value, cost, state.tick)
            state.cost += cost
            if state.cost > limit {
                // Evict the oldest quarter at once: amortises the sort over many inserts.
                let victims = state.entries.sorted { $0.value.tick < $1.value.tick }
                var target = limit * 3 / 4
                for (victim, entry) in victims where state.cost > target {
                    state.entries[victim] = nil
                    state.cost -= entry.cost
                    target = limit * 3 / 4
                }
            }
        }
    }
}

/// Instances of stored studies, read back for viewers: headers (cached), whole files,
/// decoded images (cached by size) and rendered frames.
struct StudyImages: Sendable {
    struct InstanceKey: Hashable, Sendable {
        var study: StudyUID
        var sop: SOPInstanceUID
    }

    /// A decoded instance: the data set (without pixel data) and its pixels.
    struct Decoded: Sendable {
        var header: DataSet
        var image: DecodedImage
    }

    let store: StudyStore
    let headers: LRUCache<InstanceKey, DataSet>
    let images: LRUCache<InstanceKey, Decoded>

    init(store: StudyStore, configuration: PortalConfiguration) {
        self.store = store
        self.headers = LRUCache(limit: configuration.headerCacheEntries)
        self.images = LRUCache(limit: configuration.imageCacheBytes)
    }

    /// The instance's Part 10 bytes; 404 when its blob is gone (the study was reported and its
    /// images released, or retention removed it).
    func file(_ study: StudyUID, _ sop: SOPInstanceUID) async throws -> [UInt8] {
        guard let compressed = try await store.compressedInstance(study: study, sop: sop) else {
            throw PortalError.notFound("the instance's images are no longer held by the grid")
        }
        return try Zstd.decompress(compressed)
    }

    /// The instance's data set without pixel data.
    func header(_ study: StudyUID, _ sop: SOPInstanceUID) async throws -> DataSet {
        let key = InstanceKey(study: study, sop: sop)
        if let cached = headers.get(key) { return cached }
        let bytes = try await file(study, sop)
        let dataSet = try DICOMFile.read(bytes, options: ReadOptions(stopBeforePixelData: true)).dataSet
        headers.put(key, dataSet)
        return dataSet
    }

    /// Headers of many instances, reading the missing ones concurrently (bounded).
    func headers(_ study: StudyUID, _ sops: [SOPInstanceUID]) async throws -> [SOPInstanceUID: DataSet] {
        var result: [SOPInstanceUID: DataSet] = [:]
        var missing: [SOPInstanceUID] = []
        for sop in sops {
            if let cached = headers.get(InstanceKey(study: study, sop: sop)) { result[sop] = cached } else { missing.append(sop) }
        }
        var index = 0
        while index < missing.count {
            let batch = missing[index..<min(missing.count, index + 16)]
            index += batch.count
            try await withThrowingTaskGroup(of: (SOPInstanceUID, DataSet?).self) { group in
                for sop in batch {
                    group.addTask {
                        do { return (sop, try await header(study, sop)) } catch let error as PortalError where error.status == 404 { return (sop, nil) }
                    }
                }
                for try await (sop, dataSet) in group { if let dataSet { result[sop] = dataSet } }
            }
        }
        return result
    }

    /// The decoded pixels (cached: scrolling back and changing the window do not decode again).
    func decoded(_ study: StudyUID, _ sop: SOPInstanceUID) async throws -> Decoded {
        let key = InstanceKey(study: study, sop: sop)
        if let cached = images.get(key) { return cached }
        let bytes = try await file(study, sop)
        let file = try DICOMFile.read(bytes)
        guard file.dataSet.contains(.pixelData) || file.dataSet.contains(Tag(0x7FE0, 0x0008)) || file.dataSet.contains(Tag(0x7FE0, 0x0009)) else {
            throw PortalError(406, "portal.notImage", "the instance has no pixel data")
        }
        let image = try file.decodePixels()
        var header = file.dataSet
        _ = header.remove(.pixelData)
        let decoded = Decoded(header: header, image: image)
        images.put(key, decoded, cost: image.storage.count * max(1, image.bitsAllocated / 8))
        headers.put(key, header)
        return decoded
    }

    /// One frame (1-based) as display pixels in `window` (nil: the instance's own window).
    func render(_ study: StudyUID, _ sop: SOPInstanceUID, frame: Int, window: VOIWindow?) async throws -> DisplayFrame {
        let decoded = try await decoded(study, sop)
        guard frame >= 1, frame <= decoded.image.frames else {
            throw PortalError.notFound("frame \(frame) does not exist (the instance has \(decoded.image.frames))")
        }
        let header = decoded.header
        let lut = ModalityLUT(slope: header.double(.rescaleSlope) ?? 1, intercept: header.double(.rescaleIntercept) ?? 0)
        var own: VOIWindow?
        if let center = header.double(.windowCenter), let width = header.double(.windowWidth), width >= 1 {
            own = VOIWindow(center: center, width: width)
        }
        return try DisplayFrame.render(decoded.image, frame: frame - 1, lut: lut, window: window, defaultWindow: own)
    }
}
