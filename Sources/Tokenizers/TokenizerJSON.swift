import JSON

// Tokenizer files are read with the shared JSON parser's lenient dialect (repeated keys kept,
// lone surrogates replaced, syntax errors worded by what was found); these adapt its results.

extension TokenizerError {
    /// The error for a JSON file (already read as UTF-8 text) that could not be parsed: the
    /// parser's syntax errors as `malformedJSON` naming the line; tokenizer errors thrown while
    /// reading pass through.
    init(readingJSON path: String, bytes: [UInt8], error: any Error) {
        switch error {
        case let error as TokenizerError:
            self = error
        case let JSONParseError.syntax(message, offset):
            self = .malformedJSON(path: path, line: JSONParser.line(at: offset, in: bytes), reason: message)
        case let error as JSONParseError:  // not thrown by the lenient dialect for UTF-8 text
            self = .malformedJSON(path: path, line: 1, reason: error.description)
        default:
            self = .unreadableFile(path: path, reason: "\(error)")
        }
    }
}

extension JSONValue {
    /// The value of the last member named `key` (a repeated key's last value wins, as in
    /// Python's `json`), if this is an object that has one.
    func lastMember(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }
}
