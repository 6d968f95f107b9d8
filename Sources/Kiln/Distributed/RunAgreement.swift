import Foundation

/// What every rank of a data-parallel run must share before its first step: the model, the options
/// that shape the run, the data and the weights it starts from. Ranks started with different commands
/// (`mpirun … : …` with two programs, a typo on one host, another data folder) would otherwise meet in
/// all-reduces of different lengths, which corrupts memory, or sum counts over different test sets.
public struct RunFacts {
    /// (what, value) pairs, compared in order: the first that differs is named.
    public private(set) var facts: [(name: String, value: String)] = []

    public init() {}

    public mutating func add(_ name: String, _ value: String) { facts.append((name, value)) }
}

extension DataParallel {
    /// Throws on a rank whose facts differ from rank 0's, naming the first that differs (the error then
    /// ends every rank, see `kiln train`). Rank 0's facts travel by two broadcasts (their length, then
    /// their bytes), so the check itself cannot meet buffers of different lengths.
    func checkAgreement(_ mine: RunFacts) throws {
        var bytes = rank == 0 ? Array(try JSONEncoder().encode(mine.facts.map { [$0.name, $0.value] })) : []
        var length = withUnsafeBytes(of: UInt64(bytes.count).littleEndian, Array.init)
        try communicator.broadcast(&length)
        if rank != 0 { bytes = [UInt8](repeating: 0, count: Int(length.reversed().reduce(0) { $0 << 8 | UInt64($1) })) }
        try communicator.broadcast(&bytes)
        guard rank != 0 else { return }
        let theirs = try JSONDecoder().decode([[String]].self, from: Data(bytes))
        for (fact, other) in zip(mine.facts, theirs) where other != [fact.name, fact.value] {
            let named = other.first == fact.name ? fact.name : "\(fact.name) (rank 0: \(other.first ?? "nothing"))"
            throw KilnError("\(named) \(fact.value) differs from rank 0's \(other.last ?? "nothing"): every rank must run the same command on the same data")
        }
        guard theirs.count == mine.facts.count else {
            throw KilnError("the run's description differs from rank 0's (\(mine.facts.count) facts against \(theirs.count)): every rank must run the same Kiln")
        }
    }

    /// A checksum of every weight and buffer's bits, the same on ranks that hold the same model.
    static func checksum(of model: Model) throws -> FNV1a {
        var hash = FNV1a()
        for (_, tensor) in model.namedTensors { hash.add(try model.device.readFloats(tensor)) }
        return hash
    }
}
