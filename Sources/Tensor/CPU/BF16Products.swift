import CDNNL
import Foundation

/// How products of bf16 operands (matmul, linear, convolution) run on this CPU.
///
/// Both kernels compute the same thing: bf16 × bf16 products are exact in f32, they are summed
/// in f32, and the sum is rounded to bf16 once (round to nearest even), as oneDNN's bf16
/// kernels and PyTorch's CPU bf16 do; only the summation order differs, as it does between any
/// two GEMM blockings. What differs is speed. oneDNN's bf16 kernels win with AMX, and on AMD
/// Zen 4 (whose `vdpbf16ps` does twice the multiply-adds of an f32 FMA). On Intel CPUs without
/// AMX (Sapphire Rapids with AMX hidden, Ice Lake, Cascade Lake) they run at about half the f32
/// kernels' rate (157 against 315 GFLOP/s for a convolution here, BENCHMARKS.md), and on CPUs
/// without AVX-512 BF16 oneDNN emulates them (55 GFLOP/s): there the operands are widened to
/// f32, the f32 kernel runs, and the result is rounded to bf16.
public enum BF16ProductKernels: String, Sendable {
    /// oneDNN's bf16 kernels.
    case native
    /// Widen to f32, the f32 kernel, round the result to bf16.
    case f32

    /// The choice for this process: `DIFFUSERS_BF16_PRODUCTS=native|f32` when set (for
    /// benchmarks), else by the CPU oneDNN sees. Fixed for the process's life, so one run's
    /// kernels never change under it.
    public static let current: BF16ProductKernels = {
        if let forced = ProcessInfo.processInfo.environment["DIFFUSERS_BF16_PRODUCTS"], let choice = BF16ProductKernels(rawValue: forced) {
            return choice
        }
        let isa = dnnl_get_effective_cpu_isa()
        let amx = isa == dnnl_cpu_isa_avx512_core_amx || isa == dnnl_cpu_isa_avx512_core_amx_fp16
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return preferred(amx: amx, avx512BF16: isa.rawValue & bf16 == bf16, vendor: cpuVendor())
    }()

    /// The faster kernel for a CPU with or without AMX and AVX-512 BF16 (as oneDNN reports
    /// them) from a vendor (`vendor_id`).
    public static func preferred(amx: Bool, avx512BF16: Bool, vendor: String?) -> BF16ProductKernels {
        amx || (avx512BF16 && vendor == "AuthenticAMD") ? .native : .f32
    }

    /// The CPU's vendor string from /proc/cpuinfo (nil where there is none, as on macOS).
    static func cpuVendor() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("vendor_id") }),
              let value = line.split(separator: ":").last else { return nil }
        return value.trimmingCharacters(in: .whitespaces)
    }
}

extension CPUBackend {
    /// Whether a bf16 product takes the f32 route (`BF16ProductKernels.f32`).
    static var bf16ProductsInF32: Bool { BF16ProductKernels.current == .f32 }
}

extension Tensor {
    /// This tensor in `dtype` with the same dense layout: a channels-last tensor stays
    /// channels-last (`to(_:)` writes the contiguous layout).
    func converted(to dtype: DType) throws -> Tensor {
        guard needsChannelsLastPath else { return try to(dtype) }
        return try permuted(0, 2, 3, 1).to(dtype).permuted(0, 3, 1, 2)  // [N, H, W, C] is dense
    }
}
