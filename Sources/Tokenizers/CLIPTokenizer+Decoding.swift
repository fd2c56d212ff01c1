extension CLIPTokenizer {
    /// The token string of an id (added tokens first, then the vocabulary), if there is one.
    public func token(forID id: Int) -> String? { tokenStrings[id] }

    /// The id of a token string (an added token, or a vocabulary entry in its byte-level form,
    /// e.g. `"photo</w>"`), if it has one.
    public func id(forToken token: String) -> Int? {
        addedTokens.id(of: token) ?? symbolIndices[token].flatMap { symbolVocabularyIDs[Int($0)] }.map(Int.init)
    }

    /// Text for `ids`, mainly for debugging, as transformers' `decode`: byte-level symbols are
    /// turned back into UTF-8 text, `</w>` into a space, and each run of symbols is stripped;
    /// added tokens that are not special stand apart, separated by spaces. Ids without a token
    /// are left out (transformers fails on them).
    ///
    /// - Parameter skipSpecialTokens: leave out the start, end, padding and other special tokens.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var pieces: [String] = []
        var run: [String] = []
        for id in ids {
            if skipSpecialTokens && specialTokenIDs.contains(id) { continue }
            guard let token = tokenStrings[id] else { continue }
            if skipSpecialTokens && specialTokens.contains(token) { continue }
            if separatelyDecodedTokens.contains(token) {
                let text = Self.textOfSymbols(run)
                if !text.isEmpty { pieces.append(text) }
                run.removeAll()
                pieces.append(token)
            } else {
                run.append(token)
            }
        }
        if !run.isEmpty { pieces.append(Self.textOfSymbols(run)) }
        let text = pieces.joined(separator: " ")
        return cleansUpTokenizationSpaces ? Self.cleanUpTokenizationSpaces(text) : text
    }

    private static func textOfSymbols(_ symbols: [String]) -> String {
        var bytes: [UInt8] = []
        for scalar in symbols.joined().unicodeScalars {
            if let byte = ByteLevelAlphabet.byte(of: scalar) {
                bytes.append(byte)
            } else {
                appendUTF8(scalar, to: &bytes)
            }
            // `</w>` becomes a space; replaced in bytes, as a combining mark after it would
            // hide it from a replacement on characters.
            if bytes.count >= 4, bytes[(bytes.count - 4)...].elementsEqual("</w>".utf8) {
                bytes.replaceSubrange((bytes.count - 4)..., with: [0x20])
            }
        }
        return pythonStrip(String(decoding: bytes, as: UTF8.self))
    }

    /// transformers' `clean_up_tokenization`: no space before `.`, `?`, `!`, `,` and English
    /// contractions (replaced on code points, as Python does).
    static func cleanUpTokenizationSpaces(_ text: String) -> String {
        let replacements: [(String, String)] = [
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ]
        var scalars = Array(text.unicodeScalars)
        for (target, replacement) in replacements {
            let pattern = Array(target.unicodeScalars)
            var output: [Unicode.Scalar] = []
            output.reserveCapacity(scalars.count)
            var index = 0
            while index < scalars.count {
                if scalars[index...].starts(with: pattern) {
                    output.append(contentsOf: replacement.unicodeScalars)
                    index += pattern.count
                } else {
                    output.append(scalars[index])
                    index += 1
                }
            }
            scalars = output
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
