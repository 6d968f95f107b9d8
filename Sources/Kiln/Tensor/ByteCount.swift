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
