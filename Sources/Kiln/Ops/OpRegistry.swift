/// Every op a spec may name. A new op is added here, once.
public enum OpRegistry {
    public static let ops: [any Op.Type] = [
        Conv2dOp.self, LinearOp.self, BatchNorm2dOp.self, ActivationOp.self, MaxPool2dOp.self, AvgPool2dOp.self,
        GlobalAvgPoolOp.self, DropoutOp.self, FlattenOp.self, LogSoftmaxOp.self, ResidualOp.self, GroupNormOp.self, LayerNormOp.self,
    ]

    /// The op that reads JSON `type` name.
    static let byName: [String: any Op.Type] = Dictionary(uniqueKeysWithValues: ops.flatMap { op in op.typeNames.map { ($0, op) } })

    /// Every JSON type name, sorted (for error messages and help).
    public static var typeNames: [String] { byName.keys.sorted() }
}
