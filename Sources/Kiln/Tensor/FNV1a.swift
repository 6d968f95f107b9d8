/// 64-bit FNV-1a: checksums that catch accidents (a cache file cut short, ranks that disagree, replicas
/// that diverged), not attacks.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ word: UInt64) { value = (value ^ word) &* 0x100_0000_01b3 }

    mutating func add(_ bytes: some Sequence<UInt8>) { for byte in bytes { add(UInt64(byte)) } }

    /// The bits of every value.
    mutating func add(_ values: [Float]) { for v in values { add(UInt64(v.bitPattern)) } }

    static func of(_ bytes: some Sequence<UInt8>) -> FNV1a {
        var hash = FNV1a()
        hash.add(bytes)
        return hash
    }

    /// The value as 16 hex digits.
    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
