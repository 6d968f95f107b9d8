/// The number of elements of `shape` times `elementSize`, or nil when a dimension is negative or the
/// product overflows: for sizes read from files, which must never trap.
func byteCount(_ shape: [Int], elementSize: Int = 1) -> Int? {
    var total = elementSize
    for dimension in shape {
        guard dimension >= 0 else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
        if overflow { return nil }
        total = product
    }
    return total
}

extension Int {
    /// self · other, or Int.max where that overflows: for figures shown to the user (MACs, a receptive
    /// field), never for sizes.
    func timesSaturating(_ other: Int) -> Int {
        let (value, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : value
    }

    /// self + other, or Int.max where that overflows.
    func plusSaturating(_ other: Int) -> Int {
        let (value, overflow) = addingReportingOverflow(other)
        return overflow ? .max : value
    }
}
