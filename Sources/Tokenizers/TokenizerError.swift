/// Why a tokenizer folder could not be loaded. Every case names the file at fault, and the
/// line where the problem is (1-based) when there is one.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required file (`vocab.json`, `merges.txt`) is not there.
    case missingFile(path: String)
    /// The file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file is not valid UTF-8; `line` is the first line with an invalid sequence.
    case invalidUTF8(path: String, line: Int)
    /// The file is not valid JSON.
    case malformedJSON(path: String, line: Int, reason: String)
    /// `vocab.json` is valid JSON but not an object (found: `found`).
    case vocabularyNotAnObject(path: String, found: String)
    /// A `vocab.json` entry whose value is not an integer id in 0..<2³¹.
    case invalidTokenID(path: String, line: Int, token: String)
    /// `merges.txt` does not start with its `#version` header line.
    case missingVersionHeader(path: String)
    /// A `merges.txt` line that does not hold exactly two symbols.
    case malformedMerge(path: String, line: Int, fieldCount: Int)
    /// A merge whose symbol (one of its two parts, or their concatenation) is not in the vocabulary.
    case unknownMergeSymbol(path: String, line: Int, symbol: String)
    /// A configuration entry of the wrong type or value.
    case invalidConfiguration(path: String, key: String, reason: String)
    /// `tokenizer.json` holds a model of another kind than the tokenizer needs (`expected`).
    case unsupportedModel(path: String, type: String, expected: String)
    /// A `model.vocab` entry of a Unigram `tokenizer.json` (0-based `index`, which is its id) that
    /// is not a `[piece, score]` pair with a string piece and a finite number as score.
    case invalidUnigramPiece(path: String, index: Int, reason: String)
    /// `model.unk_id` (or the id a tokenizer class assumes for the unknown token) is not the id
    /// of a `model.vocab` entry.
    case unknownTokenIDOutOfRange(path: String, id: Int, vocabularySize: Int)
    /// The normaliser's `precompiled_charsmap` (SentencePiece's normalisation table) is not
    /// base64, or its trie or replacement strings are cut short or point past its data.
    case invalidCharsmap(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "Tokenizer file \(path) does not exist."
        case .unreadableFile(let path, let reason):
            return "Cannot read tokenizer file \(path): \(reason)."
        case .invalidUTF8(let path, let line):
            return "\(path), line \(line): the text is not valid UTF-8."
        case .malformedJSON(let path, let line, let reason):
            return "\(path), line \(line): malformed JSON: \(reason)."
        case .vocabularyNotAnObject(let path, let found):
            return "\(path): the vocabulary must be a JSON object of token → id, found \(found)."
        case .invalidTokenID(let path, let line, let token):
            return "\(path), line \(line): the id of token \"\(token)\" is not an integer in 0..<2147483648."
        case .missingVersionHeader(let path):
            return "\(path), line 1: expected the \"#version\" header line of a BPE merges file."
        case .malformedMerge(let path, let line, let count):
            return "\(path), line \(line): a merge must have exactly two symbols, found \(count)."
        case .unknownMergeSymbol(let path, let line, let symbol):
            return "\(path), line \(line): merge symbol \"\(symbol)\" is not in the vocabulary."
        case .invalidConfiguration(let path, let key, let reason):
            return "\(path): \"\(key)\" \(reason)."
        case .unsupportedModel(let path, let type, let expected):
            return "\(path): the tokenizer model is \(type), but this tokenizer needs a \(expected) model."
        case .invalidUnigramPiece(let path, let index, let reason):
            return "\(path): entry \(index) of \"model.vocab\" \(reason)."
        case .unknownTokenIDOutOfRange(let path, let id, let size):
            return "\(path): the unknown-token id \(id) is not the id of a vocabulary entry (the vocabulary has \(size))."
        case .invalidCharsmap(let path, let reason):
            return "\(path): the normalizer's \"precompiled_charsmap\" \(reason)."
        }
    }
}
