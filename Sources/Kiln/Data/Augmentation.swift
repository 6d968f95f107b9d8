#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How each training image is transformed on the fly, from Philox words (the same on every device):
/// a random rotation and shift (bilinear, pixels from outside the image black: digits' default), or a
/// random crop of the image padded on each side (colour images' default); then an optional horizontal
/// flip and an optional cutout square (DeVries & Taylor 2017).
public struct Augmentation: Codable, Equatable, Sendable {
    /// How a crop fills the pixels outside the image: black (as torchvision pads the raw image, so the
    /// normalised black pixel) or the image mirrored without repeating its edge (torch's "reflect").
    public enum Padding: String, Codable, Sendable, CaseIterable {
        case zero, reflect
    }

    public var maxDegrees: Float
    public var maxShift: Float
    /// A crop of the original size at a uniform offset in the image padded by this on each side (0: none).
    public var cropPadding = 0
    public var paddingMode = Padding.zero
    /// A horizontal flip with probability 1/2.
    public var flip = false
    /// The side of a square set to 0 after normalisation (the dataset's mean), centred at a uniform pixel
    /// and clipped at the borders (0: none).
    public var cutout = 0

    public init(maxDegrees: Float, maxShift: Float, cropPadding: Int = 0, paddingMode: Padding = .zero,
                flip: Bool = false, cutout: Int = 0) {
        self.maxDegrees = maxDegrees
        self.maxShift = maxShift
        self.cropPadding = cropPadding
        self.paddingMode = paddingMode
        self.flip = flip
        self.cutout = cutout
    }

    /// The default for images of `channels` × `size` × `size`: digits (one channel) rotate by up to 7°
    /// and shift by up to 1 pixel and never flip; colour images take a crop padded by an eighth of the
    /// side (4 on CIFAR-10's 32) and a flip, as the usual CIFAR recipes do.
    public static func standard(channels: Int, size: Int) -> Augmentation {
        channels == 1 ? Augmentation(maxDegrees: 7, maxShift: 1) : Augmentation(maxDegrees: 0, maxShift: 0, cropPadding: size / 8, flip: true)
    }

    /// Whether images are rotated or shifted (bilinear resampling).
    public var rotates: Bool { maxDegrees != 0 || maxShift != 0 }

    /// What a run report prints.
    public var summary: String {
        var parts: [String] = []
        if rotates { parts.append("±\(maxDegrees)° ±\(maxShift)px") }
        if cropPadding > 0 { parts.append("crop padded \(cropPadding) (\(paddingMode.rawValue))") }
        if flip { parts.append("flip") }
        if cutout > 0 { parts.append("cutout \(cutout)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// Refuses settings that do not fit images of `size` × `size` or each other, naming `kiln train`'s flags.
    public func check(size: Int) throws {
        guard cropPadding >= 0, cropPadding < size else {
            throw KilnError("--crop-padding \(cropPadding) must be between 0 and \(size - 1) on \(size)×\(size) images")
        }
        guard cutout >= 0, cutout <= size else {
            throw KilnError("--cutout \(cutout) must be between 1 and the image size \(size)")
        }
        guard cropPadding == 0 || !rotates else {
            throw KilnError("--crop-padding with --rotate/--shift: both move the image, use one of them")
        }
    }

    /// The inverse map of one image's transform, from Philox words: output pixel (x, y) samples input
    /// at (a·x' + b·y' + cx + tx, −b·x' + a·y' + cy + ty), with x' = x − cx, y' = y − cy.
    @inline(__always)
    public func transform(_ words: SIMD4<UInt32>) -> (a: Float, b: Float, tx: Float, ty: Float) {
        let angle = (Philox.unit(words[0]) * 2 - 1) * maxDegrees * (Float.pi / 180)
        let tx = (Philox.unit(words[1]) * 2 - 1) * maxShift
        let ty = (Philox.unit(words[2]) * 2 - 1) * maxShift
        return (cosf(angle), sinf(angle), tx, ty)
    }

    /// The Philox block index of a batch slot's crop and cutout words (its rotation and flip take block
    /// `slot`): the top bit keeps the two apart for any batch.
    @inline(__always)
    public static func placementBlock(_ slot: Int) -> UInt32 { UInt32(slot) | 0x8000_0000 }

    /// Where one image's crop, flip and cutout fall, from word 3 of the slot's first block (`first`, the
    /// flip) and the four of its placement block (crop x and y, cutout x and y). Integers drawn by the
    /// high word of word × range: exact on every device. Output pixel (x, y) reads the padded image at
    /// (x' + dx, y + dy), x' = x mirrored when `flip`, and is 0 inside the cutout square.
    @inline(__always)
    public func placement(first: SIMD4<UInt32>, _ words: SIMD4<UInt32>, height: Int, width: Int)
        -> (dx: Int, dy: Int, flip: Bool, cutLeft: Int, cutTop: Int) {
        @inline(__always) func below(_ word: UInt32, _ n: Int) -> Int { Int((UInt64(word) * UInt64(n)) >> 32) }
        let span = 2 * cropPadding + 1
        return (below(words[0], span), below(words[1], span), flip && first[3] >> 31 == 1,
                below(words[2], width) - cutout / 2, below(words[3], height) - cutout / 2)
    }

    // Checkpoints from before the crop, flip and cutout hold only the rotation and shift.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxDegrees = try c.decode(Float.self, forKey: .maxDegrees)
        maxShift = try c.decode(Float.self, forKey: .maxShift)
        cropPadding = try c.decodeIfPresent(Int.self, forKey: .cropPadding) ?? 0
        paddingMode = try c.decodeIfPresent(Padding.self, forKey: .paddingMode) ?? .zero
        flip = try c.decodeIfPresent(Bool.self, forKey: .flip) ?? false
        cutout = try c.decodeIfPresent(Int.self, forKey: .cutout) ?? 0
    }
}
