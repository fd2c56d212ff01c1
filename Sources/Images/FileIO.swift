import Files

/// Whole-file reads and atomic writes, through the project's one file checker and output
/// committer (errors are `FileError`s naming the path).
enum FileIO {
    /// The bytes of the regular file at `path` (never a FIFO or device, which would block or
    /// never end), at most `maxBytes`.
    static func read(_ path: String, maxBytes: Int) throws -> [UInt8] {
        try InputFile.read(path, maxBytes: maxBytes)
    }

    /// Writes each `(path, bytes)` pair so that no reader ever sees a half-written file and a
    /// failure leaves none of them: all are staged beside their targets, then committed together.
    static func writeAtomically(_ files: [(path: String, bytes: [UInt8])]) throws {
        let outputs = OutputFiles()
        for file in files {
            try outputs.claim(file.path, role: "image file")
            try outputs.stage(file.path, bytes: file.bytes)
        }
        try outputs.commit()
    }
}
