import Dispatch
import Foundation

/// Splits loops over a CPU device's threads. Chunks are contiguous and fixed for a given thread count,
/// and every reduction is combined in chunk order, so results repeat bit for bit.
public struct Parallel: Sendable {
    /// Worker threads.
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Like `chunks`, also passing the part's index (0 ..< parts) so it can use per-thread scratch.
    /// Returns how many parts ran.
    @discardableResult @inline(__always)
    public func parts(_ count: Int, _ body: (_ part: Int, _ range: Range<Int>) -> Void) -> Int {
        let parts = min(threads, max(1, count))
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                work.value(part, count * part / parts ..< count * (part + 1) / parts)
            }
        }
        return parts
    }

    /// Calls `body` on `threads` contiguous sub-ranges of 0..<count (fewer when each would get less
    /// than `grain` items), in parallel.
    @inline(__always)
    public func chunks(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / max(grain, 1)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        // Callers hand each chunk disjoint memory; the box only tells the compiler so.
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                work.value(count * part / parts ..< count * (part + 1) / parts)
            }
        }
    }
}

private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

public enum System {
    public static var coreCount: Int { ProcessInfo.processInfo.activeProcessorCount }
}
