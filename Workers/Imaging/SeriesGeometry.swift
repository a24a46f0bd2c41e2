/// Geometry attributes of one slice, as read from its header.
public struct SliceHeader: Sendable, Equatable {
    /// Image Position (Patient): 3 values, mm.
    public var imagePosition: [Double]?
    /// Image Orientation (Patient): row and column direction cosines, 6 values.
    public var imageOrientation: [Double]?
    public var instanceNumber: Int?
    /// Pixel Spacing: row spacing (between rows, i.e. y) then column spacing (x), mm.
    public var pixelSpacing: [Double]?
    public var sliceThickness: Double?

    public init(imagePosition: [Double]? = nil, imageOrientation: [Double]? = nil, instanceNumber: Int? = nil,
                pixelSpacing: [Double]? = nil, sliceThickness: Double? = nil) {
        self.imagePosition = imagePosition
        self.imageOrientation = imageOrientation
        self.instanceNumber = instanceNumber
        self.pixelSpacing = pixelSpacing
        self.sliceThickness = sliceThickness
    }
}

/// Slices missing after a given position in the sorted series.
public struct SliceGap: Sendable, Equatable, Codable {
    /// Index (in sorted order) of the slice before the gap.
    public var after: Int
    /// How many slices are missing there.
    public var missing: Int
}

/// How a series was ordered and what is wrong with its spacing.
public struct SeriesGeometry: Sendable, Equatable, Codable {
    public enum SortMethod: String, Sendable, Codable {
        /// Image Position (Patient) projected on the slice normal.
        case position
        /// Instance Number (positions absent or inconsistent).
        case instanceNumber
        /// Neither was usable: input order kept.
        case input
    }

    /// `order[k]` is the input index of the k-th slice after sorting.
    public var order: [Int]
    public var sortMethod: SortMethod
    /// Median distance between neighbouring slices along the normal (mm); nil unless sorted by position.
    public var sliceSpacing: Double?
    /// Consecutive distances in sorted order (count - 1 values; empty unless sorted by position).
    public var spacings: [Double]
    public var gaps: [SliceGap]
    /// Some neighbour distance is not a whole multiple of the median within tolerance.
    public var unevenSpacing: Bool
    /// Slices at (nearly) the same position as their predecessor.
    public var duplicatePositions: Int
    /// Slices whose orientation differs from the first slice's.
    public var inconsistentOrientation: Bool
    /// Pixel spacing of the first slice (row, column), mm.
    public var pixelSpacing: [Double]?

    public var missingSlices: Int { gaps.reduce(0) { $0 + $1.missing } }

    /// Sorts slices and inspects their spacing.
    /// - Parameter tolerance: allowed relative deviation of a neighbour distance from a whole
    ///   multiple of the median before the series counts as unevenly spaced.
    public static func assemble(_ headers: [SliceHeader], tolerance: Double = 0.1) -> SeriesGeometry {
        let n = headers.count
        var geometry = SeriesGeometry(order: Array(0..<n), sortMethod: .input, sliceSpacing: nil, spacings: [], gaps: [],
                                      unevenSpacing: false, duplicatePositions: 0, inconsistentOrientation: false,
                                      pixelSpacing: headers.first?.pixelSpacing)
        guard n > 0 else { return geometry }

        let firstOrientation = headers.first?.imageOrientation
        if let o = firstOrientation, o.count == 6 {
            for h in headers.dropFirst() {
                guard let p = h.imageOrientation, p.count == 6 else { geometry.inconsistentOrientation = true; break }
                if zip(o, p).contains(where: { abs($0 - $1) > 1e-3 }) { geometry.inconsistentOrientation = true; break }
            }
        }

        let positionsUsable = headers.allSatisfy { ($0.imagePosition?.count ?? 0) == 3 }
            && (firstOrientation?.count ?? 0) == 6 && !geometry.inconsistentOrientation
        if positionsUsable, let o = firstOrientation {
            let row = (o[0], o[1], o[2]), col = (o[3], o[4], o[5])
            let normal = (row.1 * col.2 - row.2 * col.1, row.2 * col.0 - row.0 * col.2, row.0 * col.1 - row.1 * col.0)
            let keys = headers.map { h -> Double in
                let p = h.imagePosition!
                return p[0] * normal.0 + p[1] * normal.1 + p[2] * normal.2
            }
            geometry.order = (0..<n).sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }
            geometry.sortMethod = .position
            let sortedKeys = geometry.order.map { keys[$0] }
            var spacings: [Double] = []
            for k in 1..<max(1, n) { spacings.append(sortedKeys[k] - sortedKeys[k - 1]) }
            geometry.spacings = spacings
            let positive = spacings.filter { $0 > 1e-3 }.sorted()
            if !positive.isEmpty {
                let median = positive[positive.count / 2]
                geometry.sliceSpacing = median
                for (k, s) in spacings.enumerated() {
                    if s <= max(1e-3, 0.01 * median) { geometry.duplicatePositions += 1; continue }
                    let ratio = s / median
                    let whole = ratio.rounded()
                    if whole >= 2 { geometry.gaps.append(SliceGap(after: k, missing: Int(whole) - 1)) }
                    if abs(ratio - max(1, whole)) > tolerance { geometry.unevenSpacing = true }
                }
            }
            return geometry
        }

        if headers.allSatisfy({ $0.instanceNumber != nil }) {
            let numbers = headers.map { $0.instanceNumber! }
            geometry.order = (0..<n).sorted { numbers[$0] != numbers[$1] ? numbers[$0] < numbers[$1] : $0 < $1 }
            geometry.sortMethod = .instanceNumber
            let sorted = geometry.order.map { numbers[$0] }
            for k in 1..<max(1, n) {
                let d = sorted[k] - sorted[k - 1]
                if d == 0 { geometry.duplicatePositions += 1 } else if d > 1 { geometry.gaps.append(SliceGap(after: k - 1, missing: d - 1)) }
            }
        }
        return geometry
    }
}
