import Files
import Foundation
import XCTest

/// The one path checker and the one output committer.
final class FilesTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "files-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ text: String, _ name: String) throws -> String {
        let path = folder + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func contents(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func testSpecialFilesAreRefusedWithoutBlocking() throws {
        let fifo = folder + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let start = Date()
        XCTAssertThrowsError(try InputFile.read(fifo)) { XCTAssertEqual($0 as? FileError, .notARegularFile(path: fifo, kind: "a named pipe (FIFO)")) }
        XCTAssertThrowsError(try InputFile.check("/dev/zero")) {
            XCTAssertEqual($0 as? FileError, .notARegularFile(path: "/dev/zero", kind: "a character device"))
        }
        XCTAssertThrowsError(try InputFile.read(folder)) { XCTAssertEqual($0 as? FileError, .notARegularFile(path: folder, kind: "a folder")) }
        XCTAssertThrowsError(try InputFile.read(folder + "/none")) { XCTAssertEqual($0 as? FileError, .notFound(path: folder + "/none")) }
        let plain = try write("hello", "plain")
        XCTAssertThrowsError(try InputFile.read(plain + "/x")) { XCTAssertTrue("\($0)".contains("not a folder"), "\($0)") }
        XCTAssertThrowsError(try InputFile.read(plain, maxBytes: 2)) { XCTAssertEqual($0 as? FileError, .tooLarge(path: plain, bytes: 5, limit: 2)) }
        XCTAssertEqual(try InputFile.read(plain), Array("hello".utf8))
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "nothing blocked")
    }

    func testClaimsCatchUnusableAndCollidingOutputs() throws {
        let outputs = OutputFiles()
        try outputs.claim(folder + "/a.png", role: "--out")
        XCTAssertThrowsError(try outputs.claim(folder + "/./a.png", role: "--report")) {
            XCTAssertEqual($0 as? FileError, .collision(path: folder + "/./a.png", first: "--out", second: "--report"))
        }
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: folder)
        XCTAssertThrowsError(try outputs.claim(folder + "/link/a.png", role: "--save-tensor"), "the same file through a link")
        XCTAssertThrowsError(try outputs.claim(folder + "/missing/b.png", role: "--out")) { XCTAssertTrue("\($0)".contains("does not exist"), "\($0)") }
        try FileManager.default.createDirectory(atPath: folder + "/taken", withIntermediateDirectories: false)
        XCTAssertThrowsError(try outputs.claim(folder + "/taken", role: "--out")) { XCTAssertTrue("\($0)".contains("a folder"), "\($0)") }
        XCTAssertThrowsError(try outputs.claim(folder + "/", role: "--out")) { XCTAssertTrue("\($0)".contains("names a folder"), "\($0)") }
        let input = try write("input", "in.png")
        XCTAssertEqual(link(input, folder + "/hard.png"), 0)
        outputs.noteInput(input, role: "--image")
        XCTAssertThrowsError(try outputs.claim(input, role: "--out")) {
            XCTAssertEqual($0 as? FileError, .collision(path: input, first: "--image", second: "--out"))
        }
        XCTAssertThrowsError(try outputs.claim(folder + "/hard.png", role: "--out"), "a hard link to the input is the input")
    }

    func testCommitIsAllOrNoneAndRestoresReplacedFiles() throws {
        let first = try write("old first", "first.txt"), second = folder + "/second.txt"
        do {
            let outputs = OutputFiles()
            try outputs.claim(first, role: "one")
            try outputs.claim(second, role: "two")
            try outputs.stage(first, bytes: Array("new first".utf8))
            try outputs.stage(second, bytes: Array("new second".utf8))
            // The second target becomes a non-empty folder after the checks: its move fails.
            try FileManager.default.createDirectory(atPath: second + "/blocker", withIntermediateDirectories: true)
            XCTAssertThrowsError(try outputs.commit())
        }
        XCTAssertEqual(try contents(first), "old first", "the replaced file is back")
        try FileManager.default.removeItem(atPath: second)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["first.txt"], "no temporary left")

        let outputs = OutputFiles()
        try outputs.claim(first, role: "one")
        try outputs.claim(second, role: "two")
        try outputs.stage(first, bytes: Array("new first".utf8))
        try outputs.stage(second, bytes: Array("new second".utf8))
        XCTAssertEqual(try outputs.commit(), [first, second])
        XCTAssertEqual(try contents(first), "new first")
        XCTAssertEqual(try contents(second), "new second")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["first.txt", "second.txt"])
    }

    func testUncommittedOutputsLeaveNothing() throws {
        do {
            let outputs = OutputFiles()
            try outputs.claim(folder + "/a.bin", role: "a")
            try outputs.stage(folder + "/a.bin", bytes: [1, 2, 3])
            XCTAssertThrowsError(try outputs.stage(folder + "/unclaimed.bin", bytes: [1]), "only claimed paths are staged")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testOutputFoldersAreCreatedAndRemovedAgain() throws {
        let deep = folder + "/x/y/z"
        let created = try OutputFolder.create(deep)
        XCTAssertEqual(created, [folder + "/x", folder + "/x/y", deep])
        XCTAssertEqual(try OutputFolder.create(deep), [], "an existing folder is fine")
        OutputFolder.remove(created)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
        let plain = try write("x", "plain")
        XCTAssertThrowsError(try OutputFolder.create(plain + "/sub")) { XCTAssertTrue("\($0)".contains(plain), "\($0)") }
        XCTAssertThrowsError(try OutputFolder.create(plain)) { XCTAssertEqual($0 as? FileError, .notAFolder(path: plain, kind: "a regular file")) }
    }
}
