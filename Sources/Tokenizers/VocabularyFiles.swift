import Foundation
import Files
import JSON

/// Readers of `vocab.json` and `merges.txt`, with transformers' reading rules and typed errors
/// that name the file and line.
enum VocabularyFiles {
    /// transformers 4's Python CLIPTokenizer reads at most this many merges (49152 − 256 − 2),
    /// ignoring any lines after them; the tokenizers library reads them all.
    static let transformers4MergeLimit = 48_894

    /// The file's bytes; `missingFile` when it is not there, `invalidUTF8` naming the first bad
    /// line when it is not UTF-8 (Python opens both files as UTF-8 text).
    static func readText(_ path: String) throws(TokenizerError) -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = try InputFile.read(path)
        } catch FileError.notFound {
            throw .missingFile(path: path)
        } catch {
            throw .unreadableFile(path: path, reason: "\(error)")
        }
        if validUTF8String(bytes[...]) == nil {
            var line = 1
            var start = 0
            for (index, byte) in bytes.enumerated() where byte == 0x0A {
                if validUTF8String(bytes[start..<index]) == nil { break }
                line += 1
                start = index + 1
            }
            throw .invalidUTF8(path: path, line: line)
        }
        return bytes
    }

    /// The file parsed as JSON in the lenient dialect tokenizer files are read with; syntax
    /// errors as `malformedJSON` naming the line.
    static func readJSON(_ path: String) throws(TokenizerError) -> JSONValue {
        let bytes = try readText(path)
        do {
            return try JSONParser.parse(bytes, dialect: .lenient)
        } catch {
            throw TokenizerError(readingJSON: path, bytes: bytes, error: error)
        }
    }

    /// The entries of `vocab.json`, a JSON object of token string → id, in file order.
    /// A repeated token keeps its first place and its last id (Python's `json.load`).
    static func readVocabulary(_ path: String) throws(TokenizerError) -> [(token: String, id: Int32)] {
        let bytes = try readText(path)
        var entries: [(token: String, id: Int32)] = []
        entries.reserveCapacity(bytes.count / 16)
        var positions: [String: Int] = [:]
        do {
            let other = try JSONParser.parseMembers(bytes, dialect: .lenient) { token, value, end in
                guard let id = value.intValue, let id32 = Int32(exactly: id), id32 >= 0 else {
                    throw TokenizerError.invalidTokenID(path: path, line: JSONParser.line(at: end, in: bytes), token: token)
                }
                if let position = positions[token] {
                    entries[position].id = id32
                } else {
                    positions[token] = entries.count
                    entries.append((token, id32))
                }
            }
            // Valid JSON of another kind.
            if let other { throw TokenizerError.vocabularyNotAnObject(path: path, found: other.typeName) }
        } catch {
            throw TokenizerError(readingJSON: path, bytes: bytes, error: error)
        }
        return entries
    }

    /// One line of `merges.txt`: its two symbols and its line number in the file.
    struct MergeLine {
        let left: String
        let right: String
        let line: Int
    }

    /// The merges of `merges.txt` in rank order: the file is stripped of surrounding whitespace,
    /// the first line (the `#version` header, required here) is skipped, and the next lines
    /// (`limit` of them at most) are split at whitespace. Blank lines are skipped; a line with
    /// other than two symbols is an error (the tokenizers library rejects it too; transformers 4
    /// would keep it as a merge that can never apply).
    static func readMerges(_ path: String, limit: Int?) throws(TokenizerError) -> [MergeLine] {
        let bytes = try readText(path)
        // Python's str.strip(): skip leading whitespace, counting the lines it spans.
        var text = String(decoding: bytes, as: UTF8.self).unicodeScalars[...]
        var line = 1
        while let first = text.first, isPythonWhitespace(first) {
            if first == "\n" { line += 1 }
            text = text.dropFirst()
        }
        while let last = text.last, isPythonWhitespace(last) { text = text.dropLast() }

        let lineLimit = limit.map { $0 + 1 } ?? Int.max
        var lines = text.split(separator: "\n", maxSplits: lineLimit, omittingEmptySubsequences: false)
            .prefix(lineLimit).makeIterator()
        guard let header = lines.next(), header.starts(with: "#version".unicodeScalars) else {
            throw .missingVersionHeader(path: path)
        }
        var merges: [MergeLine] = []
        merges.reserveCapacity(min(lineLimit, bytes.count / 4))
        while let content = lines.next() {
            line += 1
            let fields = content.split(whereSeparator: isPythonWhitespace)
            switch fields.count {
            case 0: continue
            case 2: merges.append(MergeLine(left: String(fields[0]), right: String(fields[1]), line: line))
            default: throw .malformedMerge(path: path, line: line, fieldCount: fields.count)
            }
        }
        return merges
    }
}

/// The string of `bytes` if they are valid UTF-8 (decoding is lossless exactly then).
func validUTF8String(_ bytes: ArraySlice<UInt8>) -> String? {
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil
}
