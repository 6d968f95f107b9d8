import CZlib
import Foundation
import Testing
@testable import Kiln

/// A seeded mutation fuzzer over every reader of outside input: IDX files (plain and gzip), `.npy`
/// arrays, safetensors checkpoints and JSON model specs. Each case mutates a valid file (bytes flipped,
/// set to edge values, inserted, deleted, duplicated, the file cut; digits in text swapped for huge or
/// negative numbers) and reads it: the reader must return or throw one line, never trap. A trap ends
/// the test process, which fails the run. 30,000 cases per reader, 150,000 in all.
@Suite struct FuzzTests {
    static let casesPerReader = 30_000

    /// xorshift64*: the same cases on every run.
    struct Mutator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

        mutating func mutate(_ seed: [UInt8]) -> [UInt8] {
            var bytes = seed
            for _ in 0...below(4) {
                let at = below(bytes.count + 1)
                switch below(8) {
                case 0 where !bytes.isEmpty: bytes[min(at, bytes.count - 1)] ^= UInt8(1 << below(8))
                case 1 where !bytes.isEmpty: bytes[min(at, bytes.count - 1)] = [0, 0xFF, 0x7F, 0x80, 1][below(5)]
                case 2: bytes.insert(contentsOf: (0..<1 + below(8)).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
                case 3 where !bytes.isEmpty: bytes.removeSubrange(at..<min(bytes.count, at + 1 + below(16)))
                case 4: bytes = Array(bytes.prefix(at))
                case 5 where at < bytes.count: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 1 + below(64))], at: below(bytes.count))
                case 6:
                    // A number in text replaced by an extreme one.
                    if let digit = bytes.indices.dropFirst(below(bytes.count)).first(where: { (48...57).contains(bytes[$0]) }) {
                        let numbers = ["9223372036854775807", "-1", "0", "4294967296", "1e308", "99999999999999999999", "-9223372036854775808"]
                        bytes.replaceSubrange(digit...digit, with: Array(numbers[below(numbers.count)].utf8))
                    }
                default: if bytes.count > 8 { bytes.swapAt(below(bytes.count), below(bytes.count)) }
                }
            }
            return bytes
        }
    }

    /// Reads `mutations` of `seed` with `read`; returns how many were accepted (the rest threw).
    func fuzz(_ seed: [UInt8], stream: UInt64, _ read: ([UInt8]) throws -> Void) throws -> Int {
        var mutator = Mutator(state: 0x9E37_79B9_7F4A_7C15 &+ stream)
        var accepted = 0
        try read(seed)  // the seed itself is valid
        for _ in 0..<Self.casesPerReader {
            do {
                try read(mutator.mutate(seed))
                accepted += 1
            } catch let error as KilnError {
                #expect(!error.message.contains("\n"), "more than one line: \(error.message)")
            }
        }
        return accepted
    }

    static let folder: URL = {
        let shm = URL(fileURLWithPath: "/dev/shm")
        let base = FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
        return base.appendingPathComponent("kiln-fuzz-\(UUID().uuidString)")
    }()

    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
        let path = Self.folder.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func idx(_ dims: [Int]) -> [UInt8] {
        [0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8((d >> (24 - 8 * $0)) & 0xFF) } }
            + (0..<dims.reduce(1, *)).map { UInt8($0 % 251) }
    }

    @Test func idxReader() throws {
        let seed = Self.idx([3, 5, 5])
        let accepted = try fuzz(seed, stream: 1) { bytes in
            let file = try IDXFile(path: file("images", bytes), expectedDimensions: 3)
            #expect(file.bytes.count == file.dimensions.reduce(1, *))
        }
        #expect(accepted < Self.casesPerReader)
    }

    @Test func gzipIDXReader() throws {
        let plain = try file("plain", Self.idx([4, 3, 3]))
        let zipped = Self.folder.appendingPathComponent("zipped.gz").path
        let out = try #require(gzopen(zipped, "wb"))
        let data = try #require(FileManager.default.contents(atPath: plain))
        _ = data.withUnsafeBytes { gzwrite(out, $0.baseAddress, UInt32($0.count)) }
        gzclose(out)
        let seed = [UInt8](try #require(FileManager.default.contents(atPath: zipped)))
        _ = try fuzz(seed, stream: 2) { bytes in _ = try IDXFile(path: file("images.gz", bytes), expectedDimensions: 3) }
    }

    @Test func npyReader() throws {
        let seed = npy("|u1", [2, 3, 3], (0..<18).map { UInt8($0) })
        let accepted = try fuzz(seed, stream: 3) { bytes in
            let array = try NPYFile(path: file("x.npy", bytes))
            #expect(array.count == array.shape.reduce(1, *))
            if array.count > 0 { _ = array.value(array.count - 1) }
        }
        #expect(accepted < Self.casesPerReader)
    }

    @Test func safetensorsReader() throws {
        var file = Safetensors()
        file.tensors["0.weight"] = .float32(randomFloats(12), shape: [3, 4])
        file.tensors["2.num_batches_tracked"] = .int64(41)
        file.metadata["kiln.epoch"] = "3"
        let seed = [UInt8](try file.encoded())
        _ = try fuzz(seed, stream: 4) { bytes in
            let read = try Safetensors(data: Data(bytes), source: "fuzz.safetensors")
            for entry in read.tensors.values { _ = entry.floats; _ = entry.int64Value }
        }
    }

    @Test func modelSpecParser() throws {
        let seed = Array(try Presets.all["lean8k"]!.jsonString().utf8)
        let accepted = try fuzz(seed, stream: 5) { bytes in
            let spec = try ModelSpec(json: Data(bytes), source: "fuzz.json")
            _ = try spec.parameterCount()
            _ = try ModelSummary(spec).render()
        }
        #expect(accepted > 0)
    }
}
