/// The tokenizers library's `Unigram` model: pieces with float64 scores, a byte trie of them, and
/// the forward Viterbi search of `encode_optimized`.
///
/// For each character start in ascending order, every piece that prefixes the rest (shortest
/// first) proposes `best[start] + score` for the position it ends at, replacing the best so far
/// only when **strictly greater**: ties keep the first candidate. (SentencePiece breaks them the
/// other way: "▁!!!!!!" with pieces "!" and "!!!!!" is [▁, !, !!!!!] here, [▁, !!!!!, !] there.)
/// A character that no single-character piece covers gets an unknown node scored
/// `min_score − 10`. Backtracking fuses consecutive unknown nodes into one unknown token.
struct UnigramModel: Sendable {
    /// The pieces in id order.
    let pieces: [String]
    private let scores: [Double]
    /// Piece → id; a repeated piece has its last id, as in the reference.
    private let ids: [String: Int]
    private let trie: ByteTrie
    let unknownID: Int
    /// Whether an unknown run becomes `<0xNN>` byte pieces when all of them exist.
    private let byteFallback: Bool
    private let unknownScore: Double

    /// - Precondition: `unknownID` is an index of `vocabulary` (checked by the caller).
    init(vocabulary: [(piece: String, score: Double)], unknownID: Int, byteFallback: Bool) {
        pieces = vocabulary.map(\.piece)
        scores = vocabulary.map(\.score)
        var ids: [String: Int] = [:]
        ids.reserveCapacity(vocabulary.count)
        var trie = ByteTrie()
        for (id, entry) in vocabulary.enumerated() {
            ids[entry.piece] = id
            trie.insert(Array(entry.piece.utf8), id: id)
        }
        self.ids = ids
        self.trie = trie
        self.unknownID = unknownID
        self.byteFallback = byteFallback
        unknownScore = (scores.min() ?? 0) - 10
    }

    func id(of piece: String) -> Int? { ids[piece] }

    /// The tokens of one pre-tokenised piece: each with its text and id (an unknown run's text is
    /// the text it covers, as the reference reports it).
    func encode(_ text: String) -> [(text: String, id: Int)] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        let size = bytes.count
        var bestScore = [Double](repeating: 0, count: size + 1)
        var bestStart = [Int](repeating: -1, count: size + 1)
        var bestID = [Int](repeating: 0, count: size + 1)
        func propose(_ end: Int, _ score: Double, _ start: Int, _ id: Int) {
            if bestStart[end] < 0 || score > bestScore[end] {
                bestScore[end] = score
                bestStart[end] = start
                bestID[end] = id
            }
        }
        var start = 0
        while start < size {
            let base = bestScore[start]
            let characterLength = Self.utf8Length(leadByte: bytes[start])
            var hasSingleCharacter = false
            trie.forEachPrefix(of: bytes, from: start) { length, id in
                propose(start + length, base + scores[id], start, id)
                if length == characterLength { hasSingleCharacter = true }
            }
            if !hasSingleCharacter { propose(min(start + characterLength, size), base + unknownScore, start, unknownID) }
            start += characterLength
        }

        var tokens: [(text: String, id: Int)] = []
        var end = size
        var unknownStart: Int?
        var unknownEnd = 0
        func flushUnknown() {
            guard let from = unknownStart else { return }
            appendUnknown(bytes[from..<unknownEnd], to: &tokens)
            unknownStart = nil
        }
        // Backwards; the tokens are reversed at the end (an unknown run's bytes are in order).
        while end > 0 {
            let from = max(bestStart[end], 0)
            if bestID[end] == unknownID {
                if unknownStart == nil { unknownEnd = end }
                unknownStart = from
            } else {
                flushUnknown()
                tokens.append((String(decoding: bytes[from..<end], as: UTF8.self), bestID[end]))
            }
            end = from
        }
        flushUnknown()
        return tokens.reversed()
    }

    /// An unknown run: its own id if the run happens to be a piece, else its byte pieces (with
    /// byte fallback, reversed for the caller), else the unknown id.
    private func appendUnknown(_ run: ArraySlice<UInt8>, to tokens: inout [(text: String, id: Int)]) {
        let text = String(decoding: run, as: UTF8.self)
        if let id = ids[text] {
            tokens.append((text, id))
            return
        }
        if byteFallback {
            let bytePieces = run.map { byte in
                "<0x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2) + ">"
            }
            let byteIDs = bytePieces.compactMap { ids[$0] }
            if byteIDs.count == bytePieces.count {
                tokens.append(contentsOf: zip(bytePieces, byteIDs).reversed().map { ($0, $1) })
                return
            }
        }
        tokens.append((text, unknownID))
    }

    private static func utf8Length(leadByte: UInt8) -> Int {
        switch leadByte {
        case 0xF0...: return 4
        case 0xE0...: return 3
        case 0xC0...: return 2
        default: return 1
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// A trie of byte strings, each key with an id (the last one inserted for a repeated key):
/// children keyed by (node, byte) in one table.
struct ByteTrie: Sendable {
    private var children: [Int: Int32] = [:]
    /// The id of the key ending at each node, or -1.
    private var keyIDs: [Int32] = [-1]

    mutating func insert(_ key: [UInt8], id: Int) {
        var node = 0
        for byte in key {
            let slot = node << 8 | Int(byte)
            if let child = children[slot] {
                node = Int(child)
            } else {
                let child = keyIDs.count
                keyIDs.append(-1)
                children[slot] = Int32(child)
                node = child
            }
        }
        keyIDs[node] = Int32(id)
    }

    /// Calls `body` with the length and id of each non-empty key that prefixes `bytes[start...]`,
    /// shortest first.
    func forEachPrefix(of bytes: [UInt8], from start: Int, _ body: (_ length: Int, _ id: Int) -> Void) {
        var node = 0
        var index = start
        while index < bytes.count, let child = children[node << 8 | Int(bytes[index])] {
            node = Int(child)
            index += 1
            if keyIDs[node] >= 0 { body(index - start, Int(keyIDs[node])) }
        }
    }
}
