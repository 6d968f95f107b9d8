import Foundation
import Kiln

/// The data each model is timed on: `--data`'s when its images have the model's input shape, the bundled
/// MNIST for models of MNIST's shape, else synthetic images of the model's shape in CIFAR-10's numbers
/// (50,000 and 10,000), so that resnet20 is timed on CIFAR-shaped data where CIFAR-10 is not at hand.
final class BenchData {
    let folder: String?
    let trainLimit: Int?, testLimit: Int?
    private var loaded: [String: Dataset] = [:]

    init(folder: String?, trainLimit: Int?, testLimit: Int?) {
        (self.folder, self.trainLimit, self.testLimit) = (folder, trainLimit, testLimit)
    }

    /// The data for `spec`: real when there is some of its shape, else synthetic.
    func dataset(for spec: ModelSpec) throws -> Dataset {
        if let data = try real(for: spec) { return data }
        let key = "synthetic \(spec.input)"
        if loaded[key] == nil {
            FileHandle.standardError.write("\(spec.name): no data of shape \(spec.input) (--data); timing it on synthetic images of that shape\n".data(using: .utf8)!)
            loaded[key] = try Dataset.synthetic(shape: spec.input, trainCount: trainLimit ?? 50_000, testCount: testLimit ?? 10_000)
        }
        return loaded[key]!
    }

    /// `--data`'s or the bundled MNIST when its images have `spec`'s input shape.
    func real(for spec: ModelSpec) throws -> Dataset? {
        for candidate in [folder, Dataset.bundledFolder()].compactMap({ $0 }) {
            let data = try load(candidate)
            if data.train.shape == spec.input { return data }
        }
        return nil
    }

    private func load(_ folder: String) throws -> Dataset {
        if let data = loaded[folder] { return data }
        let data = try Dataset.load(folder: folder, trainLimit: trainLimit, testLimit: testLimit)
        loaded[folder] = data
        return data
    }
}
