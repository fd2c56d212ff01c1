import Foundation

/// CLIP's byte-level BPE over a symbol table.
///
/// A word's UTF-8 bytes become one symbol each (the byte's character of `ByteLevelAlphabet`;
/// the last one with `</w>` appended), then the adjacent pair of lowest merge rank is merged,
/// every non-overlapping occurrence from left to right, until no adjacent pair has a rank or
/// one symbol is left — transformers' `CLIPTokenizer.bpe`.
///
/// Symbols are small integers, one per distinct string (vocabulary strings, plus base symbols
/// that the vocabulary lacks), so merging compares integers, never strings.
struct BytePairEncoder: Sendable {
    struct Merge: Sendable {
        let rank: Int32
        let result: Int32
    }

    /// Merge of each symbol pair, keyed by `pairKey`.
    private let merges: [UInt64: Merge]
    /// The symbol of each byte inside a word, and at its end (with `</w>`).
    private let byteSymbols: [Int32]
    private let finalByteSymbols: [Int32]
    private let cache = BPECache()

    /// The two markers transformers' BPE cache starts with: a word equal to one of them is one
    /// symbol, itself, without `</w>`.
    private let markerSymbols: [[UInt8]: Int32]

    /// - Parameters:
    ///   - merges: (left, right, result) symbol triples in rank order; a later duplicate pair
    ///     takes the later rank, as in transformers' `dict(zip(merges, range(...)))`.
    ///   - symbols: the symbol table, which gains the base symbols and markers it lacks.
    init(merges orderedMerges: [(Int32, Int32, Int32)], symbols: inout SymbolTable) {
        var merges: [UInt64: Merge] = [:]
        merges.reserveCapacity(orderedMerges.count)
        for (rank, (left, right, result)) in orderedMerges.enumerated() {
            merges[Self.pairKey(left, right)] = Merge(rank: Int32(rank), result: result)
        }
        self.merges = merges
        byteSymbols = ByteLevelAlphabet.strings.map { symbols.symbol(for: $0) }
        finalByteSymbols = ByteLevelAlphabet.strings.map { symbols.symbol(for: $0 + "</w>") }
        var markers: [[UInt8]: Int32] = [:]
        for marker in ["<|startoftext|>", "<|endoftext|>"] {
            markers[Array(marker.utf8)] = symbols.symbol(for: marker)
        }
        markerSymbols = markers
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// The symbols of one pre-tokenised word, given as its UTF-8 bytes.
    func symbols(ofWord bytes: [UInt8]) -> [Int32] {
        if let cached = cache[bytes] { return cached }
        let result = merge(bytes)
        cache[bytes] = result
        return result
    }

    private func merge(_ bytes: [UInt8]) -> [Int32] {
        // The markers are printable ASCII, so their byte-level form is themselves.
        if let marker = markerSymbols[bytes] { return [marker] }
        guard let last = bytes.last else { return [] }
        var word = bytes.dropLast().map { byteSymbols[Int($0)] }
        word.append(finalByteSymbols[Int(last)])
        var scratch: [Int32] = []
        scratch.reserveCapacity(word.count)
        while word.count > 1 {
            var best: Merge?
            var bestLeft: Int32 = 0, bestRight: Int32 = 0
            for index in 0..<word.count - 1 {
                if let merge = merges[Self.pairKey(word[index], word[index + 1])],
                   merge.rank < best?.rank ?? .max {
                    best = merge
                    bestLeft = word[index]
                    bestRight = word[index + 1]
                }
            }
            guard let best else { break }
            scratch.removeAll(keepingCapacity: true)
            var index = 0
            while index < word.count {
                if index + 1 < word.count, word[index] == bestLeft, word[index + 1] == bestRight {
                    scratch.append(best.result)
                    index += 2
                } else {
                    scratch.append(word[index])
                    index += 1
                }
            }
            swap(&word, &scratch)
        }
        return word
    }
}

/// The BPE symbols: one small integer per distinct string, with the vocabulary id of those
/// the vocabulary has.
struct SymbolTable {
    private(set) var indices: [String: Int32] = [:]
    private(set) var strings: [String] = []
    private(set) var vocabularyIDs: [Int32?] = []

    /// A table of the vocabulary's strings, whose ids are given in file order.
    init(vocabulary: [(token: String, id: Int32)]) {
        indices.reserveCapacity(vocabulary.count + 600)
        strings.reserveCapacity(vocabulary.count + 600)
        vocabularyIDs.reserveCapacity(vocabulary.count + 600)
        for (token, id) in vocabulary { _ = symbol(for: token, vocabularyID: id) }
    }

    /// The symbol of `string`, added (without a vocabulary id) if it is new.
    mutating func symbol(for string: String, vocabularyID: Int32? = nil) -> Int32 {
        if let index = indices[string] { return index }
        let index = Int32(strings.count)
        indices[string] = index
        strings.append(string)
        vocabularyIDs.append(vocabularyID)
        return index
    }
}

/// Words already encoded, shared by the threads that use one tokenizer. Cleared when it holds
/// `capacity` words, so that a long-running process does not grow without bound.
private final class BPECache: @unchecked Sendable {
    private let lock = NSLock()
    private var words: [[UInt8]: [Int32]] = [:]
    private let capacity = 1 << 16

    subscript(key: [UInt8]) -> [Int32]? {
        get { lock.withLock { words[key] } }
        set {
            lock.withLock {
                if words.count >= capacity { words.removeAll(keepingCapacity: true) }
                words[key] = newValue
            }
        }
    }
}
