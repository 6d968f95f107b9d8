import Foundation
import Testing
@testable import Kiln

@Suite struct ModelSpecTests {
    @Test func presetParameterCounts() throws {
        #expect(try Presets.all["ref18k"]!.parameterCount() == 18_738)
        #expect(try Presets.all["strided12k"]!.parameterCount() == 12_122)
        let lean = try Presets.all["lean8k"]!.parameterCount()
        #expect(lean < 8_000)
        #expect(try Presets.all["tiny5k"]!.parameterCount() == 4_720)
        #expect(try Presets.all["res8k"]!.parameterCount() == lean)
        // He et al.'s ResNet-20 and -8 with projection shortcuts (see Presets.resNet), and 20 and 8 weighted layers.
        #expect(try Presets.all["resnet20"]!.parameterCount() == 272_474)
        #expect(try Presets.all["resnet8"]!.parameterCount() == 78_042)
        for (name, depth) in [("resnet20", 20), ("resnet8", 8)] {
            let summary = try ModelSummary(Presets.all[name]!)
            let weighted = summary.rows.filter { $0.name.hasPrefix("Conv2d") || $0.name.hasPrefix("Linear") }
            let shortcuts = weighted.filter { $0.name.contains("shortcut") }
            #expect(weighted.count - shortcuts.count == depth && shortcuts.count == 2, "\(name): \(weighted.map(\.name))")
            #expect(summary.rows.last?.outputShape == ImageShape(channels: 10, size: 1))
        }
        #expect(try Presets.all["dwnet"]!.parameterCount() == 169_610)
        for name in ["lean8k", "tiny5k"] {
            #expect(!Presets.all[name]!.layers.contains { $0.op is LinearOp })
        }
    }

    @Test func ref18kOutputSizes() throws {
        let spec = Presets.all["ref18k"]!
        let sizes = zip(spec.layers, try spec.validate()).compactMap { layer, shape -> Int? in
            layer.op is Conv2dOp || layer.op is MaxPool2dOp || layer.op is AvgPool2dOp ? shape.size : nil
        }
        #expect(sizes == [28, 30, 30, 15, 15, 15, 7, 9, 9, 9, 11, 1])
    }

    @Test(arguments: Presets.all.keys.sorted())
    func jsonRoundTrip(name: String) throws {
        let spec = Presets.all[name]!
        #expect(try ModelSpec(json: Data(spec.jsonString().utf8), source: "test") == spec)
    }

    /// A spec built in code can hold a number JSON cannot: writing it is an error, not a trap.
    @Test func unwritableSpecIsAnError() {
        let spec = ModelSpec(name: "odd", input: ImageShape(channels: 1, size: 4), layers: [.dropout(.nan)])
        #expect { try spec.jsonString() } throws: { String(describing: $0).contains("odd: nan cannot be written in a JSON spec") }
    }

    static let badSpecs: [(String, String)] = [
        (#"{"input": [1, 28, 28], "layers": [{"type": "conv3d", "out": 4, "kernel": 3}]}"#, "layer 0: unknown layer type \"conv3d\""),
        (#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 4, "kernel": 3, "colour": 1}]}"#, "layer 0 (conv2d): unknown field \"colour\""),
        (#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 4}]}"#, "layer 0 (conv2d): missing field \"kernel\""),
        (#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 4, "kernel": 3}, {"type": "conv2d", "in": 8, "out": 4, "kernel": 3}]}"#,
         "layer 1 (conv2d): channel mismatch: \"in\" is 8 but its input has 4 channels"),
        (#"{"input": [1, 4, 4], "layers": [{"type": "conv2d", "out": 4, "kernel": 3}, {"type": "conv2d", "out": 4, "kernel": 3}]}"#,
         "layer 1 (conv2d): kernel 3 does not fit the 2x2 input"),
        (#"{"input": [1, 28, 28], "layers": [{"type": "linear", "out": 10}]}"#, "layer 0 (linear): input is [1, 28, 28]"),
        (#"{"input": [1, 28, 28], "layers": [{"type": "dropout", "p": 1.5}]}"#, "layer 0 (dropout): p must be in [0, 1)"),
        (#"{"input": [1, 28, 27], "layers": [{"type": "relu"}]}"#, "\"input\" must be [channels, size, size]"),
        (#"[1, 2]"#, "not a JSON object"),
        (#"{"input": [1, 28, 28], "layers": 5}"#, "\"layers\": must be a list of objects"),
        (#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": "8", "kernel": 3}]}"#, "layer 0 (conv2d): field \"out\" must be a number"),
        (#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 8.5, "kernel": 3}]}"#, "layer 0 (conv2d): field \"out\" must be an integer"),
        (#"{"input": [1, 28, 28], "layers": [], "optimizer": "sgd"}"#, "unknown field \"optimizer\""),
        (#"{"input": [1, 28, 28], "layers": [{"out": 8}]}"#, "layer 0: missing \"type\""),
        (#"{"input": "#, "not JSON"),
        (#"{"input": [1, 8, 8], "layers": [{"type": "residual", "body": [{"type": "conv2d", "out": 4, "kernel": 3}]}]}"#,
         "layer 0 (residual): the body gives [4, 6, 6] but the shortcut (the identity) gives [1, 8, 8]: they must match to be summed"),
        (#"{"input": [1, 8, 8], "layers": [{"type": "residual", "body": [{"type": "relu"}], "shortcut": [{"type": "maxpool2d", "kernel": 2}]}]}"#,
         "layer 0 (residual): the body gives [1, 8, 8] but the shortcut gives [1, 4, 4]"),
        (#"{"input": [1, 8, 8], "layers": [{"type": "residual", "body": [{"type": "relu"}, {"type": "relu", "slope": 1}]}]}"#,
         "layer 0.body.1 (relu): unknown field \"slope\""),
        (#"{"input": [1, 8, 8], "layers": [{"type": "relu"}, {"type": "residual", "body": [{"type": "residual", "body": [{"type": "conv2d", "out": 1, "kernel": 9}]}]}]}"#,
         "layer 1.body.0.body.0 (conv2d): kernel 9 does not fit the 8x8 input"),
        (#"{"input": [1, 8, 8], "layers": [{"type": "residual", "body": []}]}"#, "layer 0 (residual): \"body\" must be a non-empty list"),
        (#"{"input": [1, 8, 8], "layers": [{"type": "residual", "body": 3}]}"#, "\"body\": has the wrong type"),
        (#"{"input": [4, 8, 8], "layers": [{"type": "conv2d", "out": 6, "kernel": 3, "groups": 3}]}"#,
         "layer 0 (conv2d): groups 3 must divide the input channels (4) and \"out\" (6)"),
        (#"{"input": [4, 8, 8], "layers": [{"type": "conv2d", "out": 6, "kernel": 3, "groups": 4}]}"#,
         "layer 0 (conv2d): groups 4 must divide the input channels (4) and \"out\" (6)"),
        (#"{"input": [4, 8, 8], "layers": [{"type": "conv2d", "out": 4, "kernel": 3, "groups": 0}]}"#,
         "layer 0 (conv2d): groups must be at least 1, got 0"),
        (#"{"input": [4, 8, 8], "layers": [{"type": "conv2d", "out": 4, "kernel": 3, "dilation": 0}]}"#,
         "layer 0 (conv2d): dilation must be at least 1, got 0"),
        (#"{"input": [1, 8, 8], "layers": [{"type": "conv2d", "out": 4, "kernel": 3, "dilation": 4}]}"#,
         "layer 0 (conv2d): kernel 3 with dilation 4 (span 9) does not fit the 8x8 input with padding 0"),
    ]

    @Test(arguments: badSpecs)
    func badSpecsNameLayerAndField(json: String, message: String) {
        #expect {
            try ModelSpec(json: Data(json.utf8), source: "net.json")
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("net.json: ") && text.contains(message) && !text.contains("\n")
        }
    }

    @Test func summaryTotals() throws {
        let summary = try ModelSummary(Presets.all["ref18k"]!)
        #expect(summary.totalParameters == 18_738)
        #expect(summary.render().contains("Total params: 18,738"))
        #expect(summary.rows[0].macs == 128 * 9 * 28 * 28 && summary.rows[0].receptiveField == 3)
    }

    /// Groups divide the weight and the MACs; dilation widens the receptive field and shrinks the output.
    /// Both are written to JSON only when they are not 1, so existing specs read and write as before.
    @Test func groupedAndDilatedConvolutions() throws {
        let spec = ModelSpec(name: "dw", input: ImageShape(channels: 4, size: 9), layers: [
            .conv2d(out: 8, kernel: 3, padding: 1, groups: 2), .conv2d(out: 8, kernel: 3, dilation: 2, groups: 8, bias: false)])
        let summary = try ModelSummary(spec)
        #expect(summary.rows[0].parameters == 8 * 2 * 9 + 8 && summary.rows[1].parameters == 8 * 9)
        #expect(summary.rows[0].macs == 8 * 2 * 9 * 9 * 9 && summary.rows[1].macs == 8 * 9 * 5 * 5)
        #expect(summary.rows[1].receptiveField == 3 + 4)
        #expect(try spec.validate().last == ImageShape(channels: 8, size: 5))
        let json = try spec.jsonString()
        #expect(json.contains("\"groups\"") && json.contains("\"dilation\""))
        #expect(try ModelSpec(json: Data(json.utf8), source: "test") == spec)
        #expect(try !Presets.all["ref18k"]!.jsonString().contains("groups") && !Presets.all["ref18k"]!.jsonString().contains("dilation"))
    }
}
