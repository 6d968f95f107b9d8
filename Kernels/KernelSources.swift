/// The OpenCL C files of `Kernels/`, embedded in the binary by SwiftPM (`.embedInCode` in Package.swift),
/// so a copied or installed `kiln` still has them. A new kernel file is added here and in Package.swift.
public enum KernelSources {
    /// Each file's name and its OpenCL C text: `common.cl` and the rest, which `OpenCLDevice` builds into
    /// its programs.
    public static let files: [(name: String, source: String)] = [
        ("activation.cl", PackageResources.activation_cl), ("batchnorm.cl", PackageResources.batchnorm_cl),
        ("channels.cl", PackageResources.channels_cl), ("common.cl", PackageResources.common_cl),
        ("convolution.cl", PackageResources.convolution_cl), ("data.cl", PackageResources.data_cl),
        ("dropout.cl", PackageResources.dropout_cl), ("groupnorm.cl", PackageResources.groupnorm_cl),
        ("loss.cl", PackageResources.loss_cl), ("optimizer.cl", PackageResources.optimizer_cl),
        ("pooling.cl", PackageResources.pooling_cl),
    ].map { ($0, String(decoding: $1, as: UTF8.self)) }
}
