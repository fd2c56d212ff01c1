import Foundation
import JSON

extension VocabularyFiles {
    /// The BPE model of a `tokenizer.json` — what transformers 5 saves in place of `vocab.json`
    /// and `merges.txt` — as the same vocabulary entries and merges those files give. Merges
    /// are `"left right"` strings or `[left, right]` pairs (both forms the tokenizers library
    /// writes); a merge's `line` is its 1-based place in `model.merges`.
    static func readTokenizerJSON(_ path: String, limit: Int?) throws(TokenizerError)
        -> (vocabulary: [(token: String, id: Int32)], merges: [MergeLine]) {
        let root = try readJSON(path)
        guard let model = root.lastMember("model"), model.objectMembers != nil else {
            throw .invalidConfiguration(path: path, key: "model", reason: "a tokenizer.json needs a \"model\" object")
        }
        if let type = model.lastMember("type")?.stringValue, type != "BPE" {
            throw .invalidConfiguration(path: path, key: "model.type", reason: "a CLIP tokenizer is a BPE model, not \(type)")
        }
        guard let members = model.lastMember("vocab")?.objectMembers else {
            throw .invalidConfiguration(path: path, key: "model.vocab", reason: "expected an object of token → id")
        }
        var vocabulary: [(token: String, id: Int32)] = []
        vocabulary.reserveCapacity(members.count)
        for (token, value) in members {
            guard let id = value.intValue, let id32 = Int32(exactly: id), id32 >= 0 else {
                throw .invalidConfiguration(path: path, key: "model.vocab", reason: "the id of token \"\(token)\" is not an integer in 0..<2147483648")
            }
            vocabulary.append((token, id32))
        }
        guard let entries = model.lastMember("merges")?.arrayValue else {
            throw .invalidConfiguration(path: path, key: "model.merges", reason: "expected an array of merges")
        }
        var merges: [MergeLine] = []
        merges.reserveCapacity(min(entries.count, limit ?? .max))
        for (index, entry) in entries.prefix(limit ?? .max).enumerated() {
            let parts: [String]
            if let text = entry.stringValue {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                parts = entry.arrayValue?.compactMap(\.stringValue) ?? []
            }
            guard parts.count == 2 else { throw .malformedMerge(path: path, line: index + 1, fieldCount: parts.count) }
            merges.append(MergeLine(left: parts[0], right: parts[1], line: index + 1))
        }
        return (vocabulary, merges)
    }
}
