import Foundation
import NN
import Tensor
import XCTest

/// `TorchGenerator` against `torch.manual_seed(s); torch.randn(shape)` and Diffusers'
/// `randn_tensor`, bit for bit.
final class TorchGeneratorTests: XCTestCase {
    private func common() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: SchedulerFixtures.path("common.safetensors"))
    }

    private func shape(_ text: Substring) -> [Int] { text.split(separator: "x").compactMap { Int($0) } }

    func testTorchRandnForEverySeedAndShape() throws {
        let file = try common()
        let names = file.names.filter { $0.hasPrefix("torch_randn.") }
        XCTAssertEqual(names.count, 17)
        for name in names {
            // torch_randn.seed{s}.{shape}
            let parts = name.split(separator: ".")
            let seed = try XCTUnwrap(UInt64(parts[1].dropFirst(4)), name)
            var generator = TorchGenerator(seed: seed, normalKernel: .vectorized)
            let expected = try file.tensor(named: name)
            let drawn = try generator.randn(shape(parts[2]))
            XCTAssertEqual(drawn.shape, expected.shape, name)
            assertBitExact(try drawn.floats(), try expected.floats(), name)
        }
    }

    func testDiffusersRandnTensor() throws {
        let file = try common()
        for name in file.names where name.hasPrefix("randn_tensor.seed") {
            let parts = name.split(separator: ".")
            var generator = TorchGenerator(seed: try XCTUnwrap(UInt64(parts[1].dropFirst(4))), normalKernel: .vectorized)
            assertBitExact(try generator.randn([1, 4, 8, 8]).floats(), try file.tensor(named: name).floats(), name)
        }
        // A list of generators: each draws one batch item.
        var first = TorchGenerator(seed: 0, normalKernel: .vectorized), second = TorchGenerator(seed: 1, normalKernel: .vectorized)
        let batch = try first.randn([1, 4, 8, 8]).floats() + second.randn([1, 4, 8, 8]).floats()
        assertBitExact(batch, try file.tensor(named: "randn_tensor.generators0,1.2x4x8x8").floats(), "generator list")
    }

    /// PyTorch's portable kernel (`ATEN_CPU_CAPABILITY=default`: libm log/sin/cos), and draws
    /// of several sizes in a row from one generator (the cached second Box–Muller value of the
    /// small-tensor path survives between calls; the ≥ 16 path leaves it alone).
    func testPortableKernelAndSequences() throws {
        for (file, kernel) in [("randn_portable", TorchGenerator.NormalKernel.scalar), ("randn_native", .vectorized)] {
            let draws = try SafeTensorsFile(path: SchedulerFixtures.path("extra/\(file).safetensors"))
            XCTAssertEqual(draws.metadata?["capability"], kernel == .scalar ? "DEFAULT" : "AVX512")
            for name in draws.names where name.hasPrefix("seed") {
                let parts = name.split(separator: ".")
                var generator = TorchGenerator(seed: try XCTUnwrap(UInt64(parts[0].dropFirst(4))), normalKernel: kernel)
                let expected = try draws.tensor(named: name)
                assertBitExact(try generator.randn(expected.shape).floats(), try expected.floats(), "\(file) \(name)")
            }
            var generator = TorchGenerator(seed: 99, normalKernel: kernel)
            for i in 0..<6 {
                let expected = try draws.tensor(named: "sequence.\(i)")
                assertBitExact(generator.normalFloats(count: expected.count), try expected.floats(), "\(file) sequence \(i)")
            }
        }
    }

    func testStreamContinuesAcrossCallsAndCopiesFork() throws {
        var a = TorchGenerator(seed: 42)
        let whole = a.normalFloats(count: 3)
        var b = TorchGenerator(seed: 42)
        // Below 16 elements values come in Box–Muller pairs; the odd one out is cached.
        let split = b.normalFloats(count: 1) + b.normalFloats(count: 2)
        assertBitExact(split, whole, "pairs survive between calls")
        var c = TorchGenerator(seed: 7)
        _ = c.normalFloats(count: 100)
        var fork = c
        XCTAssertEqual(c.normalFloats(count: 20), fork.normalFloats(count: 20))
        c.manualSeed(7)
        var fresh = TorchGenerator(seed: 7)
        XCTAssertEqual(c.normalFloats(count: 5), fresh.normalFloats(count: 5))
    }

    func testUniformAndRawDraws() throws {
        // MT19937 with seed 5489 (std::mt19937's default) starts 3499211612, 581869302.
        var g = TorchGenerator(seed: 5489)
        XCTAssertEqual(g.nextUInt32(), 3_499_211_612)
        XCTAssertEqual(g.nextUInt32(), 581_869_302)
        var u = TorchGenerator(seed: 0)
        let values = u.uniformFloats(count: 1000)
        XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertThrowsError(try u.randn([2, -1]))
        XCTAssertEqual(try u.randn([0, 4]).count, 0)
    }
}
