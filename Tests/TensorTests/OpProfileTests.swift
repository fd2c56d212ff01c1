import Foundation
import Tensor
import XCTest

/// The per-op-class profile: operations land in their class and section, time is exclusive
/// (a conversion inside an operation is copy, not also the operation), nothing is recorded
/// outside `record` or on other threads.
final class OpProfileTests: XCTestCase {
    func testOperationsLandInTheirClassAndSection() throws {
        let x = try Tensor((0..<(2 * 8 * 16 * 16)).map { Float($0 % 17) / 17 - 0.5 }, shape: [2, 8, 16, 16])
        let weight = try Tensor((0..<(8 * 8 * 9)).map { Float($0 % 11) / 11 - 0.5 }, shape: [8, 8, 3, 3])
        let matrix = try Tensor((0..<(64 * 32)).map { Float($0 % 7) / 7 }, shape: [64, 32])
        let profile = OpProfile()
        try profile.record {
            OpProfile.beginSection("first")
            let y = try x.conv2d(weight: weight, padding: 1)
            _ = try y.silu()
            _ = try y.to(.bf16)
            OpProfile.beginSection("second")
            _ = try matrix.linear(weight: try Tensor(Array(repeating: 0.5, count: 16 * 32), shape: [16, 32]))
            _ = try x.groupNorm(groups: 2, weight: nil, bias: nil, eps: 1e-5)
            OpProfile.beginSection("first")
            _ = try y.silu()
        }
        _ = try x.silu()   // after `record`: not counted
        XCTAssertEqual(profile.sectionOrder, ["first", "second"])
        let first = try XCTUnwrap(profile.sections["first"]), second = try XCTUnwrap(profile.sections["second"])
        XCTAssertEqual(first.entries, 2)
        XCTAssertEqual(first.calls[.convolution], 1)
        XCTAssertEqual(first.calls[.elementwise], 2)
        XCTAssertEqual(first.operations["unary.silu"].map { $0 > 0 }, true)
        // The bf16 conversion, and inside the convolution its weight's packing (and any
        // activation reorders): copies, not convolution time.
        XCTAssertNotNil(first.operations["copy"])
        XCTAssertNotNil(first.operations["pack-weight"])
        XCTAssertNil(first.calls[.matmul])
        XCTAssertEqual(second.calls[.matmul], 1)
        XCTAssertEqual(second.calls[.normalization], 1)
        XCTAssertNil(second.calls[.convolution])
        for section in [first, second] {
            let claimed = section.seconds.values.reduce(0, +)
            XCTAssertGreaterThan(claimed, 0)
            XCTAssertLessThanOrEqual(claimed, section.wallSeconds, "exclusive times fit in the wall time")
            XCTAssertEqual(section.otherSeconds, section.wallSeconds - claimed, accuracy: 1e-12)
        }
    }

    /// A copy made inside a measured operation counts once, as copy.
    func testNestedTimeIsExclusive() throws {
        let profile = OpProfile()
        let x = try Tensor(Array(repeating: 1, count: 1 << 20), shape: [1 << 20])
        try profile.record {
            OpProfile.beginSection("s")
            try OpProfile.measure(.convolution) {
                Thread.sleep(forTimeInterval: 0.02)
                OpProfile.measure(.copy) { Thread.sleep(forTimeInterval: 0.03) }
                _ = try x.to(.bf16)
            }
        }
        let section = try XCTUnwrap(profile.sections["s"])
        let convolution = try XCTUnwrap(section.seconds[.convolution]), copy = try XCTUnwrap(section.seconds[.copy])
        XCTAssertGreaterThanOrEqual(copy, 0.03)
        XCTAssertGreaterThanOrEqual(convolution, 0.02)
        XCTAssertLessThan(convolution, 0.03 + 0.02, "the nested copies are not also the convolution's")
        XCTAssertEqual(section.calls[.copy], 2)
        XCTAssertLessThanOrEqual(convolution + copy, section.wallSeconds)
    }

    func testOtherThreadsAndNoSectionRecordNothing() throws {
        let profile = OpProfile()
        let x = try Tensor([1, 2, 3], shape: [3])
        try profile.record {
            _ = try x.silu()   // no section open yet
            OpProfile.beginSection("s")
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async { _ = try? x.silu(); done.signal() }
            done.wait()
        }
        XCTAssertEqual(profile.sections["s"]?.calls ?? [:], [:])
        XCTAssertEqual(profile.sectionOrder, ["s"])
    }
}
