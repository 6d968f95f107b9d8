import Foundation
import Testing
@testable import Kiln

/// Crop, flip and cutout: the CPU gather against a plain reference that pads the image as torch does,
/// crops, flips and masks as DeVries & Taylor's cutout; the draws' ranges; the settings' checks.
@Suite struct AugmentationTests {
    static let fill: [Float] = [-0.5, -1.5, 2]

    /// Gathers images `order[0 ..< n]` of `values` [3, total, size, size] on `device`.
    static func gather(_ device: Device, _ values: [Float], total: Int, size: Int, n: Int, order: [Int32],
                       _ augmentation: Augmentation?, step: UInt64 = 5) throws -> [Float] {
        let images = try tensor(device, [3, total, size, size], values)
        let labels = try device.allocate([total], .int32), indices = try device.allocate([total], .int32)
        try device.write((0..<Int32(total)).map { $0 }, to: labels)
        try device.write(order, to: indices)
        let out = try device.allocate([3, n, size, size], .float32), outLabels = try device.allocate([n], .int32)
        try device.fill(out, with: .nan)
        try device.gatherBatch(images: images, labels: labels, order: indices, start: 0, output: out, outputLabels: outLabels,
                               augmentation: augmentation, fill: tensor(device, [3], fill),
                               generator: Philox(seed: testSeed, stream: 9), step: step)
        #expect(try device.readInts(outLabels) == Array(order[0..<n]))
        return try device.readFloats(out)
    }

    /// The reference: pad (zero: the channel's fill; reflect: torch's, the row mirrored without its
    /// edge), crop at the drawn offset, flip, then zero the cutout square clipped to the image.
    static func reference(_ values: [Float], total: Int, size s: Int, n: Int, order: [Int32], _ a: Augmentation,
                          step: UInt64 = 5) -> [Double] {
        let p = a.cropPadding, generator = Philox(seed: testSeed, stream: 9)
        var out = [Double](repeating: .nan, count: 3 * n * s * s)
        for slot in 0..<n {
            let place = a.placement(first: generator.block(UInt32(slot), step: step),
                                    generator.block(Augmentation.placementBlock(slot), step: step), height: s, width: s)
            for ch in 0..<3 {
                let image = (0..<s).map { y in (0..<s).map { x in Double(values[((ch * total + Int(order[slot])) * s + y) * s + x]) } }
                func padRow(_ row: [Double]) -> [Double] {
                    a.paddingMode == .zero
                        ? Array(repeating: Double(fill[ch]), count: p) + row + Array(repeating: Double(fill[ch]), count: p)
                        : Array(row[1...p].reversed()) + row + Array(row[(s - 1 - p)..<(s - 1)].reversed())
                }
                let rows = image.map(padRow)
                let blank = Array(repeating: Double(fill[ch]), count: s + 2 * p)
                let padded = a.paddingMode == .zero
                    ? Array(repeating: blank, count: p) + rows + Array(repeating: blank, count: p)
                    : Array(rows[1...p].reversed()) + rows + Array(rows[(s - 1 - p)..<(s - 1)].reversed())
                var crop = (0..<s).map { y in Array(padded[place.dy + y][place.dx..<(place.dx + s)]) }
                if place.flip { crop = crop.map { $0.reversed() } }
                // DeVries & Taylor: y1 = clip(cy − S/2), y2 = clip(y1 + S) (S for odd sides too).
                let centreX = place.cutLeft + a.cutout / 2, centreY = place.cutTop + a.cutout / 2
                if a.cutout > 0 {
                    for y in max(centreY - a.cutout / 2, 0)..<min(centreY - a.cutout / 2 + a.cutout, s) {
                        for x in max(centreX - a.cutout / 2, 0)..<min(centreX - a.cutout / 2 + a.cutout, s) { crop[y][x] = 0 }
                    }
                }
                for y in 0..<s { for x in 0..<s { out[((ch * n + slot) * s + y) * s + x] = crop[y][x] } }
            }
        }
        return out
    }

    static let cases: [(size: Int, padding: Int, mode: Augmentation.Padding, cutout: Int)] =
        [5, 33].flatMap { size in (1...4).flatMap { p in Augmentation.Padding.allCases.map { (size, p, $0, size == 5 ? p : 5 * p - 1) } } }

    /// Exactly the reference: crop, flip and cutout move and zero values, with no arithmetic.
    @Test(arguments: cases)
    func cropFlipCutoutMatchTheReference(_ c: (size: Int, padding: Int, mode: Augmentation.Padding, cutout: Int)) throws {
        let (total, n) = (9, 7), order: [Int32] = [8, 3, 3, 0, 5, 1, 7, 2, 4]
        let values = randomFloats(3 * total * c.size * c.size)
        for a in [Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: c.padding, paddingMode: c.mode, flip: true, cutout: c.cutout),
                  Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: c.padding, paddingMode: c.mode)] {
            let actual = try Self.gather(CPUDevice(threads: 3), values, total: total, size: c.size, n: n, order: order, a)
            #expect(actual.map(Double.init) == Self.reference(values, total: total, size: c.size, n: n, order: order, a), "\(a.summary)")
        }
    }

    /// A flip alone mirrors each row of a rotated (or untouched) image; a cutout alone zeroes a square.
    @Test func flipAndCutoutComposeWithRotation() throws {
        let (s, total, n) = (7, 9, 9), order: [Int32] = [4, 3, 2, 1, 0, 8, 7, 6, 5]
        let values = randomFloats(3 * total * s * s)
        let rotated = Augmentation(maxDegrees: 20, maxShift: 1)
        var flipped = rotated
        flipped.flip = true
        let plain = try Self.gather(CPUDevice(), values, total: total, size: s, n: n, order: order, rotated)
        let mirrored = try Self.gather(CPUDevice(), values, total: total, size: s, n: n, order: order, flipped)
        // Slot by slot, as drawn (Philox stream 9 of `gather`): mirrored rows where the flip came up.
        let generator = Philox(seed: testSeed, stream: 9)
        let drawn = (0..<n).map { flipped.placement(first: generator.block(UInt32($0), step: 5), .zero, height: s, width: s).flip }
        for ch in 0..<3 {
            for slot in 0..<n {
                for y in 0..<s {
                    let row = ((ch * n + slot) * s + y) * s
                    let (before, after) = (Array(plain[row..<row + s]), Array(mirrored[row..<row + s]))
                    #expect(after == (drawn[slot] ? before.reversed() : before))
                }
            }
        }
        var cut = rotated
        cut.cutout = 3
        let holed = try Self.gather(CPUDevice(), values, total: total, size: s, n: n, order: order, cut)
        let changed = zip(holed, plain).filter { $0 != $1 }
        #expect(changed.allSatisfy { $0.0 == 0 } && changed.count <= 3 * n * 9 && !changed.isEmpty)
    }

    /// The draws cover their ranges: every crop offset, both flips near half the time, every cutout centre.
    @Test func drawsCoverTheirRanges() {
        let a = Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: 3, flip: true, cutout: 4)
        let generator = Philox(seed: testSeed, stream: 4)
        let places = (0..<4000).map { slot in
            a.placement(first: generator.block(UInt32(slot), step: 2), generator.block(Augmentation.placementBlock(slot), step: 2),
                        height: 9, width: 11)
        }
        #expect(Set(places.map(\.dx)) == Set(0...6) && Set(places.map(\.dy)) == Set(0...6))
        #expect(Set(places.map { $0.cutLeft + 2 }) == Set(0..<11) && Set(places.map { $0.cutTop + 2 }) == Set(0..<9))
        let flips = places.filter(\.flip).count
        #expect(flips > 1800 && flips < 2200, "\(flips) of 4000 flipped")
        #expect(!Augmentation(maxDegrees: 0, maxShift: 0).placement(first: SIMD4(repeating: .max), .zero, height: 3, width: 3).flip)
    }

    @Test func refusesWhatDoesNotFit() {
        func refused(_ a: Augmentation, _ message: String) {
            #expect { try a.check(size: 32) } throws: { String(describing: $0).contains(message) }
        }
        refused(Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: 32), "--crop-padding 32 must be between 0 and 31")
        refused(Augmentation(maxDegrees: 0, maxShift: 0, cutout: 33), "--cutout 33 must be between 1 and the image size 32")
        refused(Augmentation(maxDegrees: 7, maxShift: 0, cropPadding: 4), "both move the image")
        #expect(throws: Never.self) { try Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: 31, paddingMode: .reflect, cutout: 32).check(size: 32) }
    }

    /// Checkpoints from before crop, flip and cutout read as rotation and shift alone; new ones round-trip.
    @Test func decodesOldAndNewCheckpoints() throws {
        let old = try JSONDecoder().decode(Augmentation.self, from: Data(#"{"maxDegrees": 7, "maxShift": 1}"#.utf8))
        #expect(old == Augmentation(maxDegrees: 7, maxShift: 1) && old.summary == "±7.0° ±1.0px")
        let new = Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: 4, paddingMode: .reflect, flip: true, cutout: 16)
        #expect(try JSONDecoder().decode(Augmentation.self, from: JSONEncoder().encode(new)) == new)
        #expect(new.summary == "crop padded 4 (reflect), flip, cutout 16")
        #expect(Augmentation.standard(channels: 3, size: 32) == Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: 4, flip: true))
        #expect(Augmentation.standard(channels: 1, size: 28) == TrainingOptions().augmentation)
    }
}
