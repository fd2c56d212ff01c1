/// Dynamic thresholding (Imagen, Saharia et al. 2022) as Diffusers' `_threshold_sample`: per
/// batch item, s = clamp(quantile(|x|, ratio), 1, maxValue); x ← clamp(x, −s, s) / s.
func dynamicThreshold(_ values: [Float], shape: [Int], ratio: Double, maxValue: Double) throws -> [Float] {
    guard shape.count >= 2 else {
        throw SchedulerError.shapeMismatch("thresholding needs a [batch, channels, ...] sample, got \(shape)")
    }
    guard ratio >= 0, ratio <= 1 else {
        throw SchedulerError.invalidValue(field: "dynamic_thresholding_ratio", value: "\(ratio)", expected: "a number in [0, 1]")
    }
    let batch = shape[0]
    guard batch > 0, !values.isEmpty else { return values }
    let perItem = values.count / batch
    var out = values
    let q = Float(ratio), upper = Float(maxValue)
    for item in 0..<batch {
        let range = (item * perItem)..<((item + 1) * perItem)
        let sorted = values[range].map { abs($0) }.sorted()
        let lastIndex = sorted.count - 1
        let s: Float
        if sorted.contains(where: \.isNaN) {
            s = .nan
        } else {
            let rank = q * Float(lastIndex)
            let below = Int(rank), above = Int(rank.rounded(.up))
            let weight = rank - Float(below)
            let low = sorted[below], high = sorted[min(above, lastIndex)]
            s = abs(weight) < 0.5 ? low + weight * (high - low) : high - (high - low) * (1 - weight)
        }
        let limit = min(max(s, 1), upper)
        for i in range { out[i] = min(max(values[i], -limit), limit) / limit }
    }
    return out
}
