// Op throughput of the CPU backend, printed as one JSON object in the same form as
// tools/bench/torch_ops_bench.py so tools/bench/ops-vs-torch.sh can put them side by side.
//
//   swift run -c release OpsBenchmark [--reps N] [--linear-shapes FILE [--distinct-weights N]] [--only matmul,conv2d,attention] [--dtypes f32,bf16]
import Foundation
import Tensor

struct Options {
    var reps = 3
    var only: Set<String> = []
    var dtypes: [DType] = [.f32, .bf16]
    /// A JSON list of {"m", "k", "n", "bias", "count"} linears (tools/bench/linear_shapes.py writes
    /// a UNet step's): each is timed, and the total weighted by count.
    var linearShapes: String?
    /// With --linear-shapes: time each shape on this many distinct weights in turn, so that a
    /// call reads its weight from memory as a model's forward does, not from a warm cache.
    var distinctWeights = 1

    init(_ arguments: [String]) throws {
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < arguments.count else { throw TensorError.invalidArgument("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--reps":
                guard let n = Int(try value()), n > 0 else { throw TensorError.invalidArgument("--reps needs a positive integer") }
                reps = n
            case "--linear-shapes": linearShapes = try value()
            case "--distinct-weights":
                guard let n = Int(try value()), n > 0 else { throw TensorError.invalidArgument("--distinct-weights needs a positive integer") }
                distinctWeights = n
            case "--only": only = Set(try value().split(separator: ",").map(String.init))
            case "--dtypes":
                dtypes = try value().split(separator: ",").map {
                    guard let d = DType(name: String($0)), d == .f32 || d == .bf16 else {
                        throw TensorError.invalidArgument("--dtypes takes f32 and/or bf16, not \($0)")
                    }
                    return d
                }
            default: throw TensorError.invalidArgument("unknown option \(arguments[i])")
            }
            i += 1
        }
    }
}

/// Deterministic values in [-1, 1).
func random(_ shape: [Int], seed: UInt64, dtype: DType) throws -> Tensor {
    var state = seed
    let values = (0..<shape.reduce(1, *)).map { _ -> Float in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 23) - 1
    }
    return try Tensor(values, shape: shape, dtype: dtype)
}

struct Workload {
    let name: String
    let shape: String
    let flops: Double
    let run: () throws -> Tensor
}

func workloads(_ dtype: DType) throws -> [Workload] {
    let n = 4096
    let a = try random([n, n], seed: 1, dtype: dtype), b = try random([n, n], seed: 2, dtype: dtype)
    let x = try random([2, 320, 64, 64], seed: 3, dtype: dtype)
    let w = try (random([320, 320, 3, 3], seed: 4, dtype: .f32) * 0.05).to(dtype)
    let bias = try random([320], seed: 5, dtype: dtype)
    let (bq, h, s, d) = (2, 8, 4096, 40)
    let q = try random([bq, h, s, d], seed: 6, dtype: dtype)
    let k = try random([bq, h, s, d], seed: 7, dtype: dtype)
    let v = try random([bq, h, s, d], seed: 8, dtype: dtype)
    let crossKey = try random([bq, h, 77, d], seed: 13, dtype: dtype), crossValue = try random([bq, h, 77, d], seed: 14, dtype: dtype)
    let stored = try random([n, n], seed: 9, dtype: .f32).to(.f8e4m3fn)
    // The SD 1.5 UNet's first-level GEGLU projection: 2 × 4096 tokens, 320 → 2560 (a weight).
    let tokens = try random([2, 4096, 320], seed: 10, dtype: dtype)
    let projection = try (random([2560, 320], seed: 11, dtype: .f32) * 0.05).to(dtype)
    let projectionBias = try random([2560], seed: 12, dtype: dtype)
    return [
        Workload(name: "matmul", shape: "[4096,4096] @ [4096,4096]", flops: 2 * pow(Double(n), 3)) { try a.matmul(b) },
        Workload(name: "linear", shape: "x [2,4096,320], w [2560,320] + bias", flops: 2.0 * 2 * 4096 * 320 * 2560) {
            try tokens.linear(weight: projection, bias: projectionBias)
        },
        Workload(name: "conv2d", shape: "x [2,320,64,64], w [320,320,3,3], pad 1",
                 flops: 2.0 * 2 * 320 * 64 * 64 * 320 * 9) { try x.conv2d(weight: w, bias: bias, padding: 1) },
        Workload(name: "attention", shape: "q,k,v [2,8,4096,40]", flops: 4.0 * Double(bq * h * s * s * d)) {
            try scaledDotProductAttention(query: q, key: k, value: v, kernel: .memoryEfficient)
        },
        // The UNet's cross-attention: 4096 image tokens over 77 text tokens.
        Workload(name: "cross_attention", shape: "q [2,8,4096,40], k,v [2,8,77,40]", flops: 4.0 * Double(bq * h * s * 77 * d)) {
            try scaledDotProductAttention(query: q, key: crossKey, value: crossValue, kernel: .auto)
        },
        // Layerwise casting's upcast; "flops" counts elements converted.
        Workload(name: "upcast_f8e4m3", shape: "[4096,4096] f8e4m3fn → \(dtype)", flops: Double(n * n)) { try stored.to(dtype) },
    ]
}

/// Runs `body` `reps` times after the caller's warm-up: the median and every time, in seconds.
func timed(_ reps: Int, _ body: () throws -> Void) rethrows -> (median: Double, times: [Double]) {
    var times: [Double] = []
    for _ in 0..<reps {
        let start = Date()
        try body()
        times.append(Date().timeIntervalSince(start))
    }
    return (times.sorted()[times.count / 2], times)
}

/// Times each linear of a shape list; returns per-shape medians and the count-weighted total.
func linearShapes(_ path: String, dtype: DType, reps: Int, distinctWeights: Int) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    guard let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
        throw TensorError.invalidArgument("\(path) is not a JSON list of shapes")
    }
    var rows: [[String: Any]] = [], total = 0.0
    for (i, entry) in list.enumerated() {
        guard let m = entry["m"] as? Int, let k = entry["k"] as? Int, let n = entry["n"] as? Int,
              let count = entry["count"] as? Int else { throw TensorError.invalidArgument("shape \(i) lacks m, k, n or count") }
        let x = try random([m, k], seed: 20, dtype: dtype)
        let weights = try (0..<distinctWeights).map {
            try (random([n, k], seed: 21 + UInt64($0), dtype: .f32) * (1 / Float(k).squareRoot())).to(dtype)
        }
        let b = (entry["bias"] as? Bool ?? false) ? try random([n], seed: 22, dtype: dtype) : nil
        var call = 0
        func next() throws { _ = try x.linear(weight: weights[call % weights.count], bias: b); call += 1 }
        for _ in 0..<max(2, distinctWeights) { try next() }
        let (median, _) = try timed(max(reps, 5, distinctWeights)) { try next() }
        total += median * Double(count)
        rows.append(["m": m, "k": k, "n": n, "count": count, "seconds": median, "gflops": 2.0 * Double(m * k * n) / median / 1e9])
        FileHandle.standardError.write(Data(String(format: "%6d %5d %5d x%3d  %8.3f ms  %6.1f GFLOP/s\n",
                                                   m, k, n, count, median * 1e3, 2.0 * Double(m * k * n) / median / 1e9).utf8))
    }
    FileHandle.standardError.write(Data(String(format: "total %.3f s\n", total).utf8))
    return ["shapes": rows, "total_seconds": total]
}

func main() throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    var results: [String: Any] = [:]
    for dtype in options.dtypes {
        if let path = options.linearShapes {
            results["linear_shapes_\(dtype)"] = try linearShapes(path, dtype: dtype, reps: options.reps, distinctWeights: options.distinctWeights)
            continue
        }
        for workload in try workloads(dtype) where options.only.isEmpty || options.only.contains(workload.name) {
            let key = "\(workload.name)_\(dtype)"
            let start = Date()
            let warm = try workload.run()
            let warmSeconds = Date().timeIntervalSince(start)
            guard warm.dtype == dtype else { throw TensorError.invalidArgument("\(key) returned \(warm.dtype)") }
            let (median, times) = try timed(options.reps) { _ = try workload.run() }
            results[key] = ["seconds": median, "gflops": workload.flops / median / 1e9, "times": times,
                            "warmup_seconds": warmSeconds, "flops": workload.flops, "shape": workload.shape]
            FileHandle.standardError.write(Data(String(format: "%@: %.3f s  %.1f GFLOP/s\n", key, median, workload.flops / median / 1e9).utf8))
        }
    }
    let report: [String: Any] = ["engine": "swift-diffusers", "threads": Parallel.threadCount, "reps": options.reps,
                                 "results": results]
    let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

do {
    try main()
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
