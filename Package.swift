// swift-tools-version: 6.0
import Foundation
import PackageDescription

// Release builds are tuned for the CPU that builds them (SwiftPM builds from source on the
// machine that runs the code): Zen 4 gets its own tuning, Intel from Sapphire Rapids on (AVX-512
// FP16 and BF16) `sapphirerapids`, older AVX-512 machines `skylake-avx512`, AVX2 machines
// Haswell-level code. Zen 4 and Sapphire Rapids also get 512-bit vectors for the Swift kernels
// (LLVM's Intel tunings prefer 256-bit ones, for Skylake's clock drop, which these CPUs do not
// have to that degree: the vectorised exp of softmax and SiLU runs twice as wide).
// DIFFUSERS_TARGET_CPU overrides the choice (e.g. `x86-64` for a binary to copy elsewhere).
func targetCPU() -> (cpu: String, wideVectors: Bool)? {
    let environment = ProcessInfo.processInfo.environment
    if let forced = environment["DIFFUSERS_TARGET_CPU"] { return forced.isEmpty ? nil : (forced, false) }
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
    let flags = Set(flagsLine.split(separator: " ").map(String.init))
    let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
    if avx512 && info.contains("AuthenticAMD") && flags.contains("avx512_bf16") { return ("znver4", true) }
    if avx512 && flags.contains("avx512_fp16") && flags.contains("avx512_bf16") { return ("sapphirerapids", true) }
    if avx512 { return ("skylake-avx512", false) }
    if ["avx2", "fma", "bmi2"].allSatisfy(flags.contains) { return ("haswell", false) }
    return nil
}

/// oneDNN 3.2, as scripts/fetch-onednn.sh unpacks Intel's official CPU build (from PyPI) into
/// .deps/onednn: every Swift target sees its headers (modules importing Tensor load CDNNL's
/// module map), and what links Tensor links the library with an rpath to it.
let oneDNN = Context.packageDirectory + "/.deps/onednn"
let oneDNNHeaders: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I" + oneDNN + "/include"])]
let oneDNNLibrary: [LinkerSetting] = [.unsafeFlags(["-L" + oneDNN + "/lib", "-Xlinker", "-rpath", "-Xlinker", oneDNN + "/lib"])]

// Swift takes its code generation features from the Clang importer's target: dropping the
// `prefer-256-bit` tuning there lets LLVM vectorise loops 512 bits wide.
let optimisation: [SwiftSetting] = targetCPU().map { target in
    let wide = target.wideVectors ? ["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", "-prefer-256-bit"] : []
    // Every CPU the detection names has fused multiply-add (a forced one may not).
    let fused: [SwiftSetting] = ["haswell", "skylake-avx512", "sapphirerapids", "znver4"].contains(target.cpu)
        ? [.define("FUSED_MULTIPLY_ADD", .when(platforms: [.linux], configuration: .release))] : []
    return [.unsafeFlags(["-target-cpu", target.cpu] + wide, .when(platforms: [.linux], configuration: .release))] + fused
} ?? []

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
        // oneDNN 3 (scripts/fetch-onednn.sh) for convolution and matmul.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        // zlib (Debian's zlib1g-dev) for PNG files.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // libjpeg-turbo (Debian's libjpeg62-turbo-dev) and libwebp (libwebp-dev) for JPEG and WebP files.
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        .systemLibrary(name: "CWebP", path: "Sources/CWebP"),
        // Opening user-named files (regular files only, checked before they can block) and
        // committing a run's outputs together.
        .target(name: "Files", swiftSettings: optimisation),
        .target(name: "Tensor", dependencies: ["CDNNL", "Files"], swiftSettings: optimisation, linkerSettings: oneDNNLibrary),
        // JSON parsing and writing (standard library only): NN re-exports it; Tokenizers uses it without Tensor.
        .target(name: "JSON", swiftSettings: optimisation),
        .target(name: "NN", dependencies: ["Tensor", "JSON", "Files"], swiftSettings: optimisation),
        .target(name: "Offload", dependencies: ["Tensor", "NN"], swiftSettings: optimisation),
        .target(name: "Models", dependencies: ["Tensor", "NN"], swiftSettings: optimisation),
        .target(name: "Tokenizers", dependencies: ["JSON", "Files"], swiftSettings: optimisation),
        .target(name: "Schedulers", dependencies: ["Tensor", "NN"], swiftSettings: optimisation),
        .target(name: "Images", dependencies: ["CZlib", "CJPEG", "CWebP", "Tensor", "Files", "JSON"], swiftSettings: optimisation),
        .target(name: "Pipelines", dependencies: ["Tensor", "NN", "Offload", "Models", "Tokenizers", "Schedulers", "Images"],
                swiftSettings: optimisation),
        .target(name: "Diffusers", dependencies: ["Tensor", "NN", "Offload", "Models", "Tokenizers", "Schedulers", "Images", "Pipelines"],
                swiftSettings: optimisation),
        .executableTarget(
            name: "diffuse",
            dependencies: ["Diffusers", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimisation),
        .executableTarget(
            name: "OpsBenchmark", dependencies: ["Tensor"], path: "Benchmarks/OpsBenchmark",
            swiftSettings: optimisation),
        .executableTarget(
            name: "UNetBenchmark", dependencies: ["Models", "NN", "Tensor"], path: "Benchmarks/UNetBenchmark",
            swiftSettings: optimisation),
        .executableTarget(
            name: "VAEBenchmark", dependencies: ["Models", "NN", "Tensor"], path: "Benchmarks/VAEBenchmark",
            swiftSettings: optimisation),
        .executableTarget(
            name: "FluxBenchmark", dependencies: ["Models", "NN", "Tensor"], path: "Benchmarks/FluxBenchmark",
            swiftSettings: optimisation),
        // Helpers the test targets share (fixture paths, tensor comparisons, error assertions);
        // under Tests/ and in no product.
        .target(name: "TestSupport", dependencies: ["Tensor", "NN"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "NN", "TestSupport"]),
        .testTarget(name: "FilesTests", dependencies: ["Files"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "Tensor", "TestSupport"]),
        .testTarget(name: "OffloadTests", dependencies: ["Offload", "Models", "Pipelines", "NN", "Tensor"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "Tensor", "Files", "CZlib", "CJPEG", "CWebP"]),
        .testTarget(name: "CLITests", dependencies: ["NN", "Tensor", "Images"]),
        .testTarget(name: "SchedulersTests", dependencies: ["Schedulers", "Tensor", "NN", "TestSupport"]),
        .testTarget(name: "PipelinesTests", dependencies: ["Pipelines", "Models", "Images", "NN", "Tensor", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = oneDNNHeaders + (target.swiftSettings ?? [])
}
