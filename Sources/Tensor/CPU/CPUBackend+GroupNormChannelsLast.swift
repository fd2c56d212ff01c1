import Foundation

extension CPUBackend {
    /// Group normalisation of a channels-last [N, C, H, W] tensor, written channels-last.
    /// A group's elements are strided in NHWC, so the statistics come from per-channel sums
    /// over the pixels (in Double, over a fixed split of the pixels so that the result does
    /// not depend on the thread count), combined per group: mean first, then the squared
    /// deviations from it, as the NCHW kernel does.
    func groupNormChannelsLast(_ x: Tensor, groups: Int, weight: [Float]?, bias: [Float]?, eps: Float) throws -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1])
        let pixels = x.shape[2] * x.shape[3], perGroup = c / groups
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device, memoryFormat: .channelsLast)
        guard out.count > 0 else { return out }
        let src = UnsafeRawPointer(x.nhwcView.data), dst = out.nhwcView.data, dtype = x.dtype
        let parts = min(16, pixels)

        /// Per channel, the sum over one sample's pixels of the values (`centres` nil) or of
        /// their squared deviations from `centres` (one per channel).
        func channelSums(_ sample: Int, centres centreValues: [Double]?) -> [Double] {
            // Read through a pointer so that the per-channel loop vectorises.
            let centres = centreValues.map { values in
                let pointer = UnsafeMutablePointer<Double>.allocate(capacity: c)
                pointer.initialize(from: values, count: c)
                return pointer
            }
            defer { centres?.deallocate() }
            let partial = UnsafeMutablePointer<Double>.allocate(capacity: parts * c)
            defer { partial.deallocate() }
            partial.initialize(repeating: 0, count: parts * c)
            Parallel.forEach(parts) { part in
                let scratch = F32Scratch(c)
                defer { scratch.free() }
                let sums = partial + part * c
                for pixel in Parallel.part(part, of: parts, splitting: pixels) {
                    let row = f32Run(src + (sample * pixels + pixel) * c * dtype.itemSize, stride: 1, dtype: dtype,
                                     count: c, scratch: scratch.pointer)
                    if let centres {
                        for ch in 0..<c { let d = Double(row[ch]) - centres[ch]; sums[ch] += d * d }
                    } else {
                        for ch in 0..<c { sums[ch] += Double(row[ch]) }
                    }
                }
            }
            var total = [Double](repeating: 0, count: c)
            for part in 0..<parts { for ch in 0..<c { total[ch] += partial[part * c + ch] } }
            return total
        }

        let size = Double(pixels * perGroup)
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: n * c), shifts = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
        defer { scales.deallocate(); shifts.deallocate() }
        for sample in 0..<n {
            let sums = channelSums(sample, centres: nil)
            let means = (0..<groups).map { g in sums[(g * perGroup)..<((g + 1) * perGroup)].reduce(0, +) / size }
            let squares = channelSums(sample, centres: (0..<c).map { means[$0 / perGroup] })
            for g in 0..<groups {
                let variance = squares[(g * perGroup)..<((g + 1) * perGroup)].reduce(0, +) / size
                let rstd = 1 / (Float(variance) + eps).squareRoot()
                let mean = Float(means[g])
                for ch in (g * perGroup)..<((g + 1) * perGroup) {
                    let s = rstd * (weight?[ch] ?? 1)
                    scales[sample * c + ch] = s
                    shifts[sample * c + ch] = (bias?[ch] ?? 0) - mean * s
                }
            }
        }

        // y = x·scale + shift per (sample, channel): one contiguous run of C per pixel.
        Parallel.forEachChunk(n * pixels, grain: max(1, 16384 / c)) { range in
            let scratch = F32Scratch(c), result = F32Scratch(c)
            defer { scratch.free(); result.free() }
            for row in range {
                let sample = row / pixels
                let values = f32Run(src + row * c * dtype.itemSize, stride: 1, dtype: dtype, count: c, scratch: scratch.pointer)
                let target = dtype == .f32 ? (dst + row * c * 4).assumingMemoryBound(to: Float.self) : result.pointer
                let s = scales + sample * c, t = shifts + sample * c
                for ch in 0..<c { target[ch] = values[ch] * s[ch] + t[ch] }
                if dtype != .f32 { convertRun(UnsafeRawPointer(target), 1, .f32, dst + row * c * dtype.itemSize, dtype, c) }
            }
        }
        withExtendedLifetime(x) {}
        return out
    }
}
