import Foundation

/// PyTorch's CPU random number generator, reproduced bit for bit: `torch.manual_seed(s)` (or
/// `torch.Generator().manual_seed(s)`) followed by `torch.randn(shape)` / `torch.rand(shape)`
/// in float32 gives the same numbers as `TorchGenerator(seed: s).randn(shape)` /
/// `.rand(shape)`, so that a seed given to this library yields Diffusers' initial latents.
///
/// How PyTorch draws (ATen's `CPUGeneratorImpl`, `DistributionsHelper.h`,
/// `cpu/DistributionTemplates.h`), and so how this type draws:
/// - The engine is the 32-bit Mersenne Twister (MT19937) seeded with the low 32 bits of the
///   seed; a 64-bit draw is two 32-bit draws, the first being the high half.
/// - A uniform float is `(u32 & 0xFFFFFF) · 2⁻²⁴`; a uniform double `(u64 & (2⁵³−1)) · 2⁻⁵³`.
/// - `randn` of a float32 tensor with at least 16 elements first fills the whole tensor with
///   uniform floats, then turns each block of 16 into normals by Box–Muller over the pairs
///   (j, j+8): `r = √(−2·log(1−u[j]))`, `θ = 2π·u[j+8]`, `n[j] = r·cos θ`, `n[j+8] = r·sin θ`.
///   When the count is not a multiple of 16, the last 16 positions are drawn again (16 new
///   uniforms) and transformed, overwriting what the last full block wrote there.
///   On x86-64 builds of PyTorch with AVX2 or AVX-512 kernels (what a machine with AVX2 and FMA
///   runs) log, sin and cos are the Cephes single-precision polynomials of `avx_mathfun.h`,
///   with the multiply–adds GCC fused; builds without them (`ATEN_CPU_CAPABILITY=default`,
///   other architectures) call the C library's `logf`, `cosf`, `sinf`. See `NormalKernel`.
/// - With fewer than 16 elements each value comes from a double-precision Box–Muller on two
///   uniform doubles (`r = √(−2·log1p(−u₂))`, `θ = 2π·u₁`), returning `r·cos θ` and keeping
///   `r·sin θ` for the next draw (that cached value survives between calls, as in PyTorch, and
///   is cleared by `manualSeed`).
///
/// The generator is a value: copying it forks the stream, and a scheduler that needs noise
/// can be handed a copy that continues where the latents left off.
public struct TorchGenerator: Sendable {
    /// Which Box–Muller implementation PyTorch's float32 `randn` (≥ 16 elements) runs.
    public enum NormalKernel: String, Sendable, CaseIterable {
        /// x86-64 PyTorch with AVX2 or AVX-512 kernels: Cephes polynomials with fused
        /// multiply–adds (`normal_fill_16_AVX2`).
        case vectorized
        /// PyTorch's portable kernel (`normal_fill_16`): the C library's `logf`/`cosf`/`sinf`.
        case scalar

        /// The kernel PyTorch selects on this machine: `ATEN_CPU_CAPABILITY` when set (as
        /// PyTorch reads it), else `.vectorized` on x86-64 processors with AVX2 and FMA.
        public static let native: NormalKernel = {
            if let forced = ProcessInfo.processInfo.environment["ATEN_CPU_CAPABILITY"]?.lowercased() {
                switch forced {
                case "avx2", "avx512": return cpuHasAVX2AndFMA() ? .vectorized : .scalar
                case "default": return .scalar
                default: break
                }
            }
            return cpuHasAVX2AndFMA() ? .vectorized : .scalar
        }()

        private static func cpuHasAVX2AndFMA() -> Bool {
            #if arch(x86_64) && os(Linux)
            guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                  let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
            let flags = Set(line.split(separator: " "))
            return flags.contains("avx2") && flags.contains("fma")
            #elseif arch(x86_64)
            return true
            #else
            return false
            #endif
        }
    }

    /// The seed last given (`torch.initial_seed()` of a generator).
    public private(set) var seed: UInt64
    /// The Box–Muller implementation float32 `randn` uses for 16 or more elements.
    public var normalKernel: NormalKernel
    private var engine: MersenneTwister
    /// The second value of the last double-precision Box–Muller pair, if not yet used.
    private var cachedNormal: Double?

    /// A generator as `torch.Generator().manual_seed(seed)`.
    public init(seed: UInt64, normalKernel: NormalKernel = .native) {
        self.seed = seed
        self.normalKernel = normalKernel
        self.engine = MersenneTwister(seed: UInt32(truncatingIfNeeded: seed))
        self.cachedNormal = nil
    }

    /// A generator for a signed seed (what `--seed` parses); negative seeds wrap to
    /// `2⁶⁴ + seed` as in PyTorch.
    public init(seed: Int, normalKernel: NormalKernel = .native) {
        self.init(seed: UInt64(bitPattern: Int64(seed)), normalKernel: normalKernel)
    }

    /// Restarts the stream, as `generator.manual_seed(seed)`.
    public mutating func manualSeed(_ seed: UInt64) {
        self = TorchGenerator(seed: seed, normalKernel: normalKernel)
    }

    /// The next 32 random bits (`CPUGeneratorImpl::random`).
    public mutating func nextUInt32() -> UInt32 { engine.next() }

    /// The next 64 random bits (`CPUGeneratorImpl::random64`): first draw high, second low.
    public mutating func nextUInt64() -> UInt64 {
        let high = UInt64(engine.next()), low = UInt64(engine.next())
        return high << 32 | low
    }

    private mutating func uniformFloat() -> Float {
        Float(engine.next() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    private mutating func uniformDouble() -> Double {
        Double(nextUInt64() & (1 << 53 - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `count` values of `torch.rand(count)` (float32, uniform on [0, 1)).
    public mutating func uniformFloats(count: Int) -> [Float] {
        (0..<max(count, 0)).map { _ in uniformFloat() }
    }

    /// `count` values of `torch.randn(count)` in float32 (any shape with that many elements
    /// draws the same values in row-major order).
    public mutating func normalFloats(count: Int) -> [Float] {
        guard count > 0 else { return [] }
        guard count >= 16 else { return (0..<count).map { _ in Float(nextDoubleNormal()) } }
        var data = uniformFloats(count: count)
        let kernel = normalKernel
        data.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var start = 0
            while start + 16 <= count {
                TorchGenerator.boxMuller16(base + start, kernel)
                start += 16
            }
            if count % 16 != 0 {
                let tail = base + (count - 16)
                for i in 0..<16 { tail[i] = uniformFloat() }
                TorchGenerator.boxMuller16(tail, kernel)
            }
        }
        return data
    }

    /// A standard normal tensor as `torch.randn(shape)` after this generator's draws so far.
    /// Values are drawn in float32 and converted to `dtype` (PyTorch draws other float dtypes
    /// natively, which can differ in the last bit of the reduced type).
    public mutating func randn(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        let count = try TorchGenerator.elementCount(shape, "randn")
        return try Tensor(normalFloats(count: count), shape: shape, dtype: dtype, device: device)
    }

    /// A uniform [0, 1) tensor as `torch.rand(shape)` (float32 draws converted to `dtype`).
    public mutating func rand(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        let count = try TorchGenerator.elementCount(shape, "rand")
        return try Tensor(uniformFloats(count: count), shape: shape, dtype: dtype, device: device)
    }

    /// The element count of `shape`, or an error for negative or overflowing dimensions.
    private static func elementCount(_ shape: [Int], _ operation: String) throws -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { throw TensorError.invalidArgument("\(operation): negative dimension in shape \(shape)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw TensorError.invalidArgument("\(operation): shape \(shape) is too large")
            }
            count = product
        }
        return count
    }

    /// `at::normal_distribution<double>(0, 1)`: one value, caching the pair's second.
    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached * 1.0 + 0.0
        }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let radius = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = radius * Foundation.sin(theta)
        return radius * Foundation.cos(theta) * 1.0 + 0.0
    }

    /// Box–Muller over `data[0..<16]` in place (mean 0, standard deviation 1).
    private static func boxMuller16(_ data: UnsafeMutablePointer<Float>, _ kernel: NormalKernel) {
        switch kernel {
        case .vectorized:
            let twoPi = Float(2.0 * Double.pi)
            for j in 0..<8 {
                let radius = (-2 * CephesFloat.log(1 - data[j])).squareRoot()
                let (sine, cosine) = CephesFloat.sinCos(twoPi * data[j + 8])
                // `_mm256_fmadd_ps(n, std, mean)`: also turns −0 into +0.
                data[j] = Float(0).addingProduct(radius * cosine, 1)
                data[j + 8] = Float(0).addingProduct(radius * sine, 1)
            }
        case .scalar:
            for j in 0..<8 {
                let u1 = 1 - data[j], u2 = data[j + 8]
                let radius = (-2 * Foundation.log(u1)).squareRoot()
                let theta = Float(2.0 * Double.pi * Double(u2))
                data[j] = radius * Foundation.cos(theta) * 1 + 0
                data[j + 8] = radius * Foundation.sin(theta) * 1 + 0
            }
        }
    }
}

/// MT19937 as `at::mt19937` (the standard algorithm; state seeded from a 32-bit value).
struct MersenneTwister: Sendable {
    private static let n = 624, m = 397
    private var state: [UInt32]
    private var index: Int

    init(seed: UInt32) {
        var state = [UInt32](repeating: 0, count: MersenneTwister.n)
        state[0] = seed
        for i in 1..<MersenneTwister.n {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
        self.state = state
        self.index = MersenneTwister.n
    }

    mutating func next() -> UInt32 {
        if index >= MersenneTwister.n { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        let n = MersenneTwister.n, m = MersenneTwister.m
        state.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let y = (s[i] & 0x8000_0000) | (s[(i + 1) % n] & 0x7FFF_FFFF)
                s[i] = s[(i + m) % n] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
            }
        }
        index = 0
    }
}

/// The single-precision Cephes logarithm and sine/cosine as PyTorch's x86 kernels evaluate
/// them (`avx_mathfun.h`), one lane at a time. Where GCC fused a multiply and an add into one
/// FMA in PyTorch's build, the code below uses `addingProduct` (one rounding); elsewhere the
/// multiply and the add round separately. That choice matches PyTorch 2.x bit for bit on
/// millions of draws.
enum CephesFloat {
    private static let logCoefficients: [Float] = [
        7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
        -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
    ]

    /// Natural logarithm (NaN for x ≤ 0; denormals are treated as the smallest normal).
    static func log(_ input: Float) -> Float {
        if !(input > 0) { return .nan }
        let x0 = max(input, Float(bitPattern: 0x0080_0000))
        let bits = x0.bitPattern
        // Exponent + 1 and mantissa in [0.5, 1).
        var e = Float(Int32(bitPattern: bits >> 23) - 0x7F) + 1
        var x = Float(bitPattern: (bits & ~0x7F80_0000) | Float(0.5).bitPattern)
        let below = x < Float(0.707106781186547524)
        let addend: Float = below ? x : 0
        x = x - 1
        e = e - (below ? 1 : 0)
        x = x + addend
        let z = x * x
        var y = logCoefficients[0]
        for c in logCoefficients.dropFirst() { y = c.addingProduct(y, x) }
        y = y * x
        y = (e * -2.12194440e-4).addingProduct(y, z)
        y = y.addingProduct(-z, 0.5)
        return (x + y).addingProduct(e, 0.693359375)
    }

    /// Sine and cosine of `input` (accurate for |input| < 8192, as Cephes).
    static func sinCos(_ input: Float) -> (sin: Float, cos: Float) {
        var x = abs(input)
        var j = Int32(x * Float(1.27323954473516))  // 4/π, truncated toward zero
        j = (j &+ 1) & ~1
        let y = Float(j)
        let flipSin = (input.sign == .minus) != ((j & 4) != 0)
        let flipCos = ((~(j &- 2)) & 4) != 0
        let useSinePolynomialForSine = (j & 2) == 0
        // Extended-precision range reduction: x − y·π/4 in three parts.
        x = x.addingProduct(y, -0.78515625)
        x = x.addingProduct(y, -2.4187564849853515625e-4)
        x = x.addingProduct(y, -3.77489497744594108e-8)
        let z = x * x
        var c: Float = 2.443315711809948e-5
        c = Float(-1.388731625493765e-3).addingProduct(c, z)
        c = Float(4.166664568298827e-2).addingProduct(c, z)
        c = c * z
        c = (-(z * 0.5)).addingProduct(c, z)
        c = c + 1
        var s: Float = -1.9515295891e-4
        s = Float(8.3321608736e-3).addingProduct(s, z)
        s = Float(-1.6666654611e-1).addingProduct(s, z)
        s = s * z
        s = x.addingProduct(s, x)
        var sine = useSinePolynomialForSine ? s : c
        var cosine = useSinePolynomialForSine ? c : s
        if flipSin { sine = -sine }
        if flipCos { cosine = -cosine }
        return (sine, cosine)
    }
}
