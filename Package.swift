// swift-tools-version: 6.0
import PackageDescription

// Release builds may use AVX2/FMA (Haswell-level x86-64): every machine this project targets has them.
let optimisation: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "swift-diffusers",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Diffusers", targets: ["Diffusers"]),
        .executable(name: "diffuse", targets: ["diffuse"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // oneDNN (Debian's libdnnl-dev) for convolution and matmul.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .target(name: "Tensor", dependencies: ["CDNNL"], swiftSettings: optimisation),
        .target(name: "NN", dependencies: ["Tensor"], swiftSettings: optimisation),
        .target(name: "Diffusers", dependencies: ["Tensor", "NN"], swiftSettings: optimisation),
        .executableTarget(
            name: "diffuse",
            dependencies: ["Diffusers", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimisation),
        .executableTarget(
            name: "OpsBenchmark", dependencies: ["Tensor"], path: "Benchmarks/OpsBenchmark",
            swiftSettings: optimisation),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "NN"], resources: []),
        .testTarget(name: "NNTests", dependencies: ["NN"]),
        .testTarget(name: "CLITests", dependencies: ["NN"]),
    ],
    swiftLanguageModes: [.v6]
)
