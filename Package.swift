// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Kiln",
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "Kiln", targets: ["Kiln"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian (see README: `make deps`).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "Kiln", dependencies: ["CBLAS", "CZlib"], path: "Sources/Kiln"),
        .executableTarget(
            name: "kiln",
            dependencies: ["Kiln", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/kiln"),
        .testTarget(name: "KilnTests", dependencies: ["Kiln"], path: "Tests/KilnTests"),
    ],
    swiftLanguageModes: [.v6]
)
