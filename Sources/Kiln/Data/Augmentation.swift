#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random rotation and shift applied on the fly (pixels from outside the image are black).
public struct Augmentation: Codable, Equatable, Sendable {
    public var maxDegrees: Float
    public var maxShift: Float

    public init(maxDegrees: Float, maxShift: Float) {
        self.maxDegrees = maxDegrees
        self.maxShift = maxShift
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
}
