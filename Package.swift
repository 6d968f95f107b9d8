// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Kiln",
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .executable(name: "kiln-bench", targets: ["kiln-bench"]),
        .library(name: "Kiln", targets: ["Kiln"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `make docs`: the library's DocC catalogue (Sources/Kiln/Kiln.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // `kiln export --onnx`: ONNX's protobuf messages.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C libraries from Debian (see README: `make deps`).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        .systemLibrary(name: "CCLBlast", path: "Sources/CCLBlast"),
        // libOpenCL and libclblast opened with dlopen at first use (not linked: `ldd kiln` lists neither),
        // and the launch log that sees every OpenCL kernel launch, CLBlast's included (`kiln-bench --profile`).
        // Exported, so that the CLBlast it opens launches through it too.
        .target(name: "COpenCLLoader", path: "Sources/COpenCLLoader",
                linkerSettings: [.linkedLibrary("dl"), .unsafeFlags(["-Xlinker", "--export-dynamic-symbol=clEnqueueNDRangeKernel"])]),
        // Open MPI opened with dlopen when a run starts under mpirun (`Distributed/`), so Kiln builds and
        // runs without it.
        .target(name: "CMPILoader", path: "Sources/CMPILoader", linkerSettings: [.linkedLibrary("dl")]),
        // The CPU's direct convolution kernels, in C for AVX2 and FMA (called only where the CPU has them).
        // Optimized in debug builds too: at -O0 intrinsics run some 10x slower, and the tests use real shapes.
        .target(name: "CDirectConvolution", path: "Sources/CDirectConvolution", cSettings: [.unsafeFlags(["-O2"])]),
        // CLBlast's tuners and parameter queries, which only its C++ API has, behind a C header (`kiln tune`).
        .target(name: "CCLBlastTuner", dependencies: ["COpenCLLoader"], path: "Sources/CCLBlastTuner"),
        // ONNX's onnx.proto as Swift messages, generated once and committed (generate/generate.sh).
        .target(name: "ONNXProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                path: "Sources/ONNXProto", exclude: ["generate"]),
        // The OpenCL kernels (Kernels/*.cl), embedded in the code (`KernelSources.files`), so a copied binary
        // still has them. A new kernel file is named here and in Kernels/KernelSources.swift.
        .target(name: "KilnKernels", path: "Kernels",
                resources: ["activation", "batchnorm", "channels", "common", "convolution", "data", "dropout", "groupnorm", "loss",
                            "optimizer", "pooling"].map { .embedInCode("\($0).cl") }),
        .target(name: "Kiln", dependencies: ["KilnKernels", "CBLAS", "CZlib", "CPNG", "COpenCL", "CCLBlast", "CCLBlastTuner", "COpenCLLoader",
                                            "CMPILoader", "CDirectConvolution", "ONNXProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                path: "Sources/Kiln"),
        // The HTML pages and SVG charts of `kiln report`, `kiln sweep`, `kiln lr-find` and `kiln-bench --out`:
        // presentation, outside the core library.
        .target(name: "KilnReports", dependencies: ["Kiln", "CPNG"], path: "Sources/KilnReports"),
        .executableTarget(
            name: "kiln",
            dependencies: ["Kiln", "KilnReports", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/KilnCLI"),
        .executableTarget(
            name: "kiln-bench",
            dependencies: ["Kiln", "KilnReports", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/kiln-bench"),
        .testTarget(name: "KilnTests", dependencies: ["Kiln", "KilnKernels", "KilnReports", "CCLBlast", "CZlib", "ONNXProto"], path: "Tests/KilnTests"),
    ],
    swiftLanguageModes: [.v6]
)
