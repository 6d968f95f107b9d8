/// A fully connected layer, `y = W x + b` with weight `[out, in]` as PyTorch. On flattened features
/// `[F, N, 1, 1]` it is exactly a 1x1 convolution, so it is one: the same primitives serve both.
enum Linear {
    static func make(spec: LayerSpec, device: Device, inFeatures: Int, outFeatures: Int, parameters: [Parameter],
                     random: inout HostRandom) throws -> Conv2d {
        try Conv2d(spec: spec, device: device, inChannels: inFeatures, outChannels: outFeatures,
                   geometry: WindowGeometry(kernel: 1, stride: 1, padding: 0), parameters: parameters, random: &random)
    }
}
