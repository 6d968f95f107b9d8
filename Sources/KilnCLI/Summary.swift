import ArgumentParser
import Kiln

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's layers, output shapes, parameters, receptive field and MACs.")

    @Option(help: "A preset (\(Presets.names)) or a JSON spec file.")
    var model = Presets.defaultName
    @Flag(help: "Print the model's JSON spec instead (a starting point for your own).")
    var spec = false

    func run() throws {
        let modelSpec = try ModelSpec.named(model)
        print(spec ? try modelSpec.jsonString() : try ModelSummary(modelSpec).render(), terminator: spec ? "" : "\n")
    }
}
