import Testing
@testable import Imaging

@Suite struct SeriesGeometryTests {
    static let axial: [Double] = [1, 0, 0, 0, 1, 0]

    func headers(_ zs: [Double], orientation: [Double] = axial) -> [SliceHeader] {
        zs.enumerated().map { i, z in
            SliceHeader(imagePosition: [-100, -100, z], imageOrientation: orientation, instanceNumber: i + 1, pixelSpacing: [0.7, 0.7])
        }
    }

    @Test func sortsByPositionAlongNormal() {
        let g = SeriesGeometry.assemble(headers([10, 0, 5, 15, 20]))
        #expect(g.sortMethod == .position)
        #expect(g.order == [1, 2, 0, 3, 4])
        #expect(g.sliceSpacing == 5)
        #expect(g.gaps.isEmpty)
        #expect(!g.unevenSpacing)
    }

    @Test func oppositeNormalSortsReversed() {
        // Row x, column -y: normal -z, so higher z comes first.
        let g = SeriesGeometry.assemble(headers([0, 5, 10], orientation: [1, 0, 0, 0, -1, 0]))
        #expect(g.order == [2, 1, 0])
    }

    @Test func obliqueProjection() {
        // Sagittal: row y, column z -> normal x. Positions vary in x.
        let hs = [3.0, 1.0, 2.0].map { SliceHeader(imagePosition: [$0, 7, -3], imageOrientation: [0, 1, 0, 0, 0, 1]) }
        let g = SeriesGeometry.assemble(hs)
        #expect(g.order == [1, 2, 0])
        #expect(g.sliceSpacing == 1)
    }

    @Test func detectsMissingSlices() {
        let g = SeriesGeometry.assemble(headers([0, 2.5, 5, 12.5, 15, 17.5]))
        #expect(g.missingSlices == 2)
        #expect(g.gaps == [SliceGap(after: 2, missing: 2)])
        #expect(!g.unevenSpacing)
    }

    @Test func detectsUnevenSpacing() {
        let g = SeriesGeometry.assemble(headers([0, 5, 10, 13, 18, 23]))
        #expect(g.unevenSpacing)
        #expect(g.gaps.isEmpty)
    }

    @Test func detectsDuplicates() {
        let g = SeriesGeometry.assemble(headers([0, 5, 5, 10]))
        #expect(g.duplicatePositions == 1)
    }

    @Test func fallsBackToInstanceNumber() {
        let hs = [3, 1, 2, 6].map { SliceHeader(instanceNumber: $0) }
        let g = SeriesGeometry.assemble(hs)
        #expect(g.sortMethod == .instanceNumber)
        #expect(g.order == [1, 2, 0, 3])
        #expect(g.gaps == [SliceGap(after: 2, missing: 2)])
        #expect(g.sliceSpacing == nil)
    }

    @Test func inconsistentOrientationFallsBack() {
        var hs = headers([0, 5, 10])
        hs[1].imageOrientation = [0, 1, 0, 0, 0, 1]
        let g = SeriesGeometry.assemble(hs)
        #expect(g.inconsistentOrientation)
        #expect(g.sortMethod == .instanceNumber)
    }

    @Test func preprocessorOrdersVolume() throws {
        let zs: [Double] = [10, 0, 5]
        let slices = zs.map { z in
            SliceInput(pixels: .int16([Int16(z), Int16(z)]), rows: 1, columns: 2,
                       header: SliceHeader(imagePosition: [0, 0, z], imageOrientation: SeriesGeometryTests.axial, pixelSpacing: [1, 1]))
        }
        let s = try SeriesPreprocessor.process(slices, options: PreprocessOptions(output: .hu))
        #expect(s.volume.voxels == [0, 0, 5, 5, 10, 10])
        #expect(s.volume.spacing.z == 5)
        #expect(s.volume.depth == 3)
        #expect(!s.issues.missingPixelSpacing)
        let sidecar = TensorSidecar(s)
        #expect(sidecar.shape == [3, 1, 2])
        #expect(sidecar.spacing == [5, 1, 1])
        #expect(s.volume.rawLittleEndianBytes().count == 24)
        #expect(Array(s.volume.rawLittleEndianBytes()[8..<12]) == [0, 0, 0xA0, 0x40]) // 5.0f
    }
}
