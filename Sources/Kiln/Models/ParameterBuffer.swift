/// Every parameter of a model in one flat device buffer, and every gradient in a second one laid out
/// the same way, so an optimizer step is one launch over all of them (and a gradient all-reduce would
/// be one call). Each `Parameter` is a view at an offset aligned to the device's `viewAlignment`; the
/// gaps between views hold zeros, and every update rule keeps a zero parameter with a zero gradient
/// and zero state at zero.
public final class ParameterBuffer {
    /// All parameters, in model order (`Model.parameters`).
    public let parameters: [Parameter]
    public let values: Tensor, gradients: Tensor
    private let offsets: [Int]
    private let device: Device

    /// `shapes` are the model's parameters in order, with PyTorch's names.
    init(_ shapes: [(name: String, shape: [Int])], on device: Device) throws {
        let alignment = device.viewAlignment
        var offsets: [Int] = [], end = 0
        for (_, shape) in shapes {
            offsets.append(end)
            end += (shape.reduce(1, *) + alignment - 1) / alignment * alignment
        }
        self.offsets = offsets
        self.device = device
        let values = try Self.zeros(end, on: device), gradients = try Self.zeros(end, on: device)
        self.values = values
        self.gradients = gradients
        parameters = try zip(shapes, offsets).map { entry, offset in
            try Parameter(entry.name, value: device.view(values, offset: offset, shape: entry.shape),
                          gradient: device.view(gradients, offset: offset, shape: entry.shape))
        }
    }

    /// A zeroed flat tensor laid out like `values` (optimizer state), and its view for each parameter.
    func state() throws -> (flat: Tensor, views: [Tensor]) {
        let flat = try Self.zeros(values.count, on: device)
        return (flat, try zip(parameters, offsets).map { try device.view(flat, offset: $1, shape: $0.value.shape) })
    }

    private static func zeros(_ count: Int, on device: Device) throws -> Tensor {
        let t = try device.allocate([count], .float32)
        try device.fill(t, with: 0)
        return t
    }
}
