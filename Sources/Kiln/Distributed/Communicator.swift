import CMPILoader
import Foundation

/// The processes of one data-parallel job: MPI's `MPI_COMM_WORLD`, reached through Open MPI opened at
/// run time (`Sources/CMPILoader`), so Kiln builds and runs without it. Every rank calls the same
/// collectives in the same order; each call blocks until all have made it.
public final class Communicator {
    public let rank: Int, size: Int
    /// This process's rank among those on its machine, which picks its device.
    public let localRank: Int
    /// Processes of the job on this machine.
    public let localSize: Int
    /// Seconds spent in sums so far (the all-reduce share of training).
    public private(set) var reduceSeconds = 0.0

    /// The job this process is part of when `mpirun` (or `srun` with Open MPI) started it, which Open MPI
    /// tells by `OMPI_COMM_WORLD_SIZE`; nil for a process started alone. `KILN_MPI_LIBRARY` names
    /// another libmpi to open.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Communicator? {
        guard let worldSize = environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) else { return nil }
        var error = [CChar](repeating: 0, count: 512)
        guard kiln_mpi_open(environment["KILN_MPI_LIBRARY"], &error, error.count) == 0 else {
            throw KilnError("started by mpirun (OMPI_COMM_WORLD_SIZE=\(worldSize)), but Open MPI does not load: \(text(error))")
        }
        var rank: Int32 = 0, size: Int32 = 0
        try check(kiln_mpi_init(&rank, &size), "MPI_Init")
        let localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init) ?? 0
        let localSize = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        return Communicator(rank: Int(rank), size: Int(size), localRank: localRank, localSize: localSize)
    }

    private init(rank: Int, size: Int, localRank: Int, localSize: Int) {
        (self.rank, self.size, self.localRank, self.localSize) = (rank, size, localRank, localSize)
    }

    /// Replaces `values` with their sums over every rank.
    public func sum(_ values: inout [Float]) throws {
        let started = Date()
        try Self.check(values.withUnsafeMutableBufferPointer { kiln_mpi_sum_floats($0.baseAddress, Int32($0.count)) }, "MPI_Allreduce")
        reduceSeconds += Date().timeIntervalSince(started)
    }

    public func sum(_ values: inout [Double]) throws {
        let started = Date()
        try Self.check(values.withUnsafeMutableBufferPointer { kiln_mpi_sum_doubles($0.baseAddress, Int32($0.count)) }, "MPI_Allreduce")
        reduceSeconds += Date().timeIntervalSince(started)
    }

    /// Replaces `values` with their largest over every rank.
    public func max(_ values: inout [Double]) throws {
        try Self.check(values.withUnsafeMutableBufferPointer { kiln_mpi_max_doubles($0.baseAddress, Int32($0.count)) }, "MPI_Allreduce")
    }

    /// Replaces `bytes` (the same count on every rank) with rank `root`'s.
    public func broadcast(_ bytes: inout [UInt8], from root: Int = 0) throws {
        try Self.check(bytes.withUnsafeMutableBytes { kiln_mpi_broadcast($0.baseAddress, Int32($0.count), Int32(root)) }, "MPI_Bcast")
    }

    /// Ends every process of the job (one failed rank must not leave the others waiting in a sum).
    public func abort(code: Int32) -> Never {
        kiln_mpi_abort(code)
        exit(code)
    }

    public func finalize() { _ = kiln_mpi_finalize() }

    private static func check(_ status: Int32, _ call: String) throws {
        guard status != 0 else { return }
        var text = [CChar](repeating: 0, count: 256)
        kiln_mpi_error_text(status, &text, text.count)
        throw KilnError("\(call) failed: \(Self.text(text)) (\(status))")
    }

    /// A NUL-terminated C string in `chars`.
    private static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
