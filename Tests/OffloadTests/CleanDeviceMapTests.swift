import Foundation
import Offload
import Tensor
import XCTest

/// Accelerate's `clean_device_map` on a small tree, and the raw map it starts from.
final class CleanDeviceMapTests: XCTestCase {
    /// root: a (x, y), ab (z), b (p, q (one, two)), c — every leaf a Linear of `size` floats.
    func makeTree(size: Int = 10) -> ModuleTree {
        func linear() -> ModuleTree.Spec {
            .init(className: "Linear", parameters: [.init(name: "weight", elementCount: size, dtype: .f32)])
        }
        func group(_ className: String, _ names: [String]) -> ModuleTree.Spec {
            .init(className: className, children: names.map { .init(name: $0, spec: linear()) })
        }
        let q = group("Q", ["one", "two"])
        let b = ModuleTree.Spec(className: "B", children: [.init(name: "p", spec: linear()), .init(name: "q", spec: q)])
        return ModuleTree(.init(className: "Root", children: [
            .init(name: "a", spec: group("A", ["x", "y"])), .init(name: "ab", spec: group("AB", ["z"])),
            .init(name: "b", spec: b), .init(name: "c", spec: linear()),
        ], noSplitModuleClasses: ["Q"]))
    }

    func testCollapsing() {
        let tree = makeTree()
        func clean(_ pairs: [(String, DeviceTarget)]) -> String { tree.cleanDeviceMap(DeviceMap(pairs)).hfDeviceMap }
        // Everything on one device: the whole model.
        XCTAssertEqual(clean([("a.x", .accel(0)), ("a.y", .accel(0)), ("ab", .accel(0)), ("b", .accel(0)), ("c", .accel(0))]),
                       #"{"": 0}"#)
        // Subtrees on one device collapse, wherever they are, and keys come out in model order.
        XCTAssertEqual(clean([("a.x", .accel(0)), ("a.y", .accel(0)), ("ab.z", .accel(0)), ("b.p", .accel(0)),
                              ("b.q.one", .accel(1)), ("b.q.two", .accel(1)), ("c", .cpu)]),
                       #"{"a": 0, "ab.z": 0, "b.p": 0, "b.q": 1, "c": "cpu"}"#)
        // A prefix matches whole components only: "a" does not take in "ab".
        XCTAssertEqual(clean([("a.x", .accel(0)), ("a.y", .accel(0)), ("ab.z", .accel(1)), ("b", .cpu), ("c", .disk)]),
                       #"{"a": 0, "ab.z": 1, "b": "cpu", "c": "disk"}"#)
        // A single key under a module stays as it is (Accelerate collapses only more than one).
        XCTAssertEqual(clean([("a.x", .accel(0)), ("b", .accel(1))]), #"{"a.x": 0, "b": 1}"#)
        // Nested collapses: b.q first, then b.
        XCTAssertEqual(clean([("a", .cpu), ("b.p", .accel(1)), ("b.q.one", .accel(1)), ("b.q.two", .accel(1)), ("c", .cpu)]),
                       #"{"a": "cpu", "b": 1, "c": "cpu"}"#)
        XCTAssertEqual(clean([]), "{}")
    }

    /// The raw walk: items placed in order, split when too big, no-split classes moved whole.
    func testRawWalk() {
        let tree = makeTree()   // 8 leaves × 40 bytes; largest layer: b.q (80 bytes, no-split)
        XCTAssertEqual(tree.largestLayer(noSplitModuleClasses: ["Q"]).size, 80)
        XCTAssertEqual(tree.largestLayer(noSplitModuleClasses: ["Q"]).names, ["b.q"])
        XCTAssertEqual(tree.largestLayer(noSplitModuleClasses: []).names, ["a.x", "a.y", "ab.z", "b.p", "b.q.one", "b.q.two", "c"])
        // accel:0 holds 200 − 80 reserved = 120 bytes: a (80) fits, ab (40) fits, b (160) is split,
        // b.p does not fit, b.q goes whole to accel:1 (no reserve there), c follows.
        let raw = tree.inferAutoDeviceMap(maxMemory: MaxMemory([(.accel(0), 200), (.accel(1), 200)]),
                                          noSplitModuleClasses: ["Q"], clean: false)
        XCTAssertEqual(raw.deviceMap.hfDeviceMap, #"{"a": 0, "ab": 0, "b.p": 1, "b.q": 1, "c": 1}"#)
        XCTAssertEqual(raw.unusedDevices, [])
        // Without the no-split class the reserve is one Linear (40 bytes): b.p still fits
        // accel:0 (160 bytes), b.q is split and its parts go to accel:1.
        let splittable = tree.inferAutoDeviceMap(maxMemory: MaxMemory([(.accel(0), 200), (.accel(1), 200)]),
                                                 noSplitModuleClasses: [], clean: false)
        XCTAssertEqual(splittable.deviceMap.hfDeviceMap, #"{"a": 0, "ab": 0, "b.p": 0, "b.q.one": 1, "b.q.two": 1, "c": 1}"#)
        XCTAssertEqual(tree.cleanDeviceMap(splittable.deviceMap).hfDeviceMap, #"{"a": 0, "ab": 0, "b.p": 0, "b.q": 1, "c": 1}"#)
    }
}
