import Foundation

// The handful of NumPy and PyTorch routines the Diffusers schedulers build their schedules
// with, reproduced to the bit where the result is exact (timesteps) and to the last place
// where PyTorch's own kernels are not correctly rounded (its float32 sqrt/log).

enum ReferenceNumerics {
    /// `np.linspace(start, stop, count)` in float64: `i·step + start`, the last value `stop`
    /// exactly; a single value is `start`.
    static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        guard count > 1 else { return [start] }
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { Double($0) * step + start }
        values[count - 1] = stop
        return values
    }

    /// `np.arange(start, stop, step)` for float64 arguments: `ceil((stop − start)/step)` values,
    /// `start + i·δ` with `δ = (start + step) − start`, as NumPy's fill computes them.
    static func arange(_ start: Double, _ stop: Double, step: Double) -> [Double] {
        let length = ((stop - start) / step).rounded(.up)
        guard length.isFinite, length > 0 else { return [] }
        let count = Int(min(length, 1e9))
        let second = start + step
        let delta = second - start
        return (0..<count).map { i in
            i == 0 ? start : (i == 1 ? second : start + Double(i) * delta)
        }
    }

    /// A float64 → int64 cast (toward zero); NaN gives 0 and huge values saturate.
    static func truncatedInt(_ x: Double) -> Int {
        guard x.isFinite else { return x.isNaN ? 0 : (x > 0 ? Int.max : Int.min) }
        return Int(max(min(x.rounded(.towardZero), 9.2e18), -9.2e18))
    }

    /// `np.round` (halves to even).
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.interp(x, [0, 1, …, n−1], values)` with float64 arithmetic.
    static func interpolate(at x: Double, in values: [Double]) -> Double {
        guard let last = values.last else { return .nan }
        if x.isNaN { return x }
        let n = values.count
        if x < 0 { return values[0] }
        if x >= Double(n - 1) { return last }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return values[j] }
        let slope = (values[j + 1] - values[j]) / (Double(j + 1) - Double(j))
        var result = slope * (x - Double(j)) + values[j]
        if result.isNaN {
            result = slope * (x - Double(j + 1)) + values[j + 1]
            if result.isNaN, values[j] == values[j + 1] { result = values[j] }
        }
        return result
    }

    /// `torch.linspace(start, end, count, dtype=float32)`: endpoints rounded to float, then
    /// `start + step·i` for the first half and `end − step·(count−1−i)` for the second, each a
    /// fused multiply–add as PyTorch's x86 build computes it.
    static func torchLinspace(_ start: Double, _ end: Double, count: Int) -> [Float] {
        guard count > 0 else { return [] }
        let s = Float(start), e = Float(end)
        guard count > 1 else { return [s] }
        let step = (e - s) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            i < halfway ? s.addingProduct(step, Float(i)) : e.addingProduct(-step, Float(count - 1 - i))
        }
    }

    /// `torch.cumprod` of float32 values on the CPU: the running product is kept in double.
    static func cumulativeProduct(_ values: [Float]) -> [Float] {
        var running = 1.0
        return values.map { running *= Double($0); return Float(running) }
    }

    /// The cosine-schedule betas of `betas_for_alpha_bar` (computed in double, stored as float).
    static func cosineBetas(count: Int, maxBeta: Double = 0.999) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = Foundation.cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count), t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), maxBeta))
        }
    }
}
