/// One tensor as the header describes it.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data buffer (which starts after the header).
    public let dataOffsets: Range<Int>

    public var byteCount: Int { dataOffsets.count }
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed and fully validated safetensors header.
public struct SafeTensorsHeader: Sendable, Equatable {
    /// Tensors in data-buffer order.
    public let entries: [SafeTensorsEntry]
    /// `__metadata__`, when present.
    public let metadata: [String: String]?
    /// The header length N (JSON bytes, padding included).
    public let headerByteCount: Int
    /// Bytes after the header.
    public let dataByteCount: Int

    /// The format's limit on N.
    public static let maximumHeaderByteCount = 100_000_000

    /// Offset of the data buffer from the start of the file.
    public var dataStart: Int { 8 + headerByteCount }

    /// Parses and validates the header of a whole file held in `file`; `path` is for messages.
    public static func parse(file: UnsafeRawBufferPointer, path: String) throws -> SafeTensorsHeader {
        if file.isEmpty { throw SafeTensorsError.emptyFile(path: path) }
        guard file.count >= 8 else { throw SafeTensorsError.fileTooSmall(path: path, size: file.count) }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(file[i]) }
        guard length <= UInt64(maximumHeaderByteCount) else {
            throw SafeTensorsError.headerTooLarge(path: path, length: length)
        }
        let n = Int(length)
        guard 8 + n <= file.count else {
            throw SafeTensorsError.headerPastEnd(path: path, length: length, fileSize: file.count)
        }
        let headerBytes = Array(file[8..<(8 + n)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else { throw SafeTensorsError.headerNotUTF8(path: path) }
        guard headerBytes.first == UInt8(ascii: "{") else { throw SafeTensorsError.headerNotObject(path: path) }
        let json: JSONValue
        do {
            json = try JSONParser.parse(headerBytes)
        } catch let JSONParseError.duplicateKey(key, keyPath) {
            if keyPath.isEmpty { throw SafeTensorsError.duplicateTensor(path: path, name: key) }
            if keyPath == "__metadata__" {
                throw SafeTensorsError.invalidMetadata(path: path, reason: "has key '\(key)' twice")
            }
            throw SafeTensorsError.invalidEntry(path: path, tensor: keyPath, reason: "field '\(key)' appears twice")
        } catch {
            throw SafeTensorsError.invalidHeaderJSON(path: path, message: "\(error)")
        }
        guard let members = json.objectMembers else { throw SafeTensorsError.headerNotObject(path: path) }

        var metadata: [String: String]?
        var entries: [SafeTensorsEntry] = []
        for (name, value) in members {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
            } else {
                entries.append(try parseEntry(name: name, value: value, path: path))
            }
        }
        let dataSize = file.count - 8 - n
        entries.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        try validateLayout(entries, dataSize: dataSize, path: path)
        return SafeTensorsHeader(entries: entries, metadata: metadata, headerByteCount: n, dataByteCount: dataSize)
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        guard let members = value.objectMembers else {
            throw SafeTensorsError.invalidMetadata(path: path, reason: "is \(value.typeName), not an object of strings")
        }
        var result: [String: String] = [:]
        for (key, v) in members {
            guard let s = v.stringValue else {
                throw SafeTensorsError.invalidMetadata(path: path, reason: "maps '\(key)' to \(v.typeName), not a string")
            }
            result[key] = s
        }
        return result
    }

    private static func nonNegativeInts(_ value: JSONValue?, field: String, name: String, path: String) throws -> [Int] {
        guard let value else {
            throw SafeTensorsError.invalidEntry(path: path, tensor: name, reason: "missing '\(field)'")
        }
        guard let array = value.arrayValue else {
            throw SafeTensorsError.invalidEntry(path: path, tensor: name, reason: "'\(field)' is \(value.typeName), not an array")
        }
        return try array.map { element in
            guard let int = element.intValue, int >= 0 else {
                let shown: String
                if case .number(let text) = element { shown = text } else { shown = element.typeName }
                throw SafeTensorsError.invalidEntry(
                    path: path, tensor: name, reason: "'\(field)' holds \(shown), not a non-negative integer")
            }
            return int
        }
    }

    private static func parseEntry(name: String, value: JSONValue, path: String) throws -> SafeTensorsEntry {
        guard value.objectMembers != nil else {
            throw SafeTensorsError.invalidEntry(path: path, tensor: name, reason: "entry is \(value.typeName), not an object")
        }
        guard let dtypeValue = value["dtype"] else {
            throw SafeTensorsError.invalidEntry(path: path, tensor: name, reason: "missing 'dtype'")
        }
        guard let dtypeName = dtypeValue.stringValue else {
            throw SafeTensorsError.invalidEntry(path: path, tensor: name, reason: "'dtype' is \(dtypeValue.typeName), not a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        let shape = try nonNegativeInts(value["shape"], field: "shape", name: name, path: path)
        let offsets = try nonNegativeInts(value["data_offsets"], field: "data_offsets", name: name, path: path)
        guard offsets.count == 2 else {
            throw SafeTensorsError.invalidEntry(
                path: path, tensor: name, reason: "'data_offsets' has \(offsets.count) numbers, not 2 ([begin, end])")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw SafeTensorsError.invalidOffsets(path: path, tensor: name, begin: begin, end: end, reason: "begin is after end")
        }
        // numel × bits / 8 with overflow checks: sub-byte dtypes (F4, F6) must fill whole bytes.
        var bits = dtype.bitWidth
        for d in shape {
            let (product, overflow) = bits.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw SafeTensorsError.invalidEntry(path: path, tensor: name, reason: "shape \(shape) is too large")
            }
            bits = product
        }
        guard bits % 8 == 0 else {
            throw SafeTensorsError.invalidEntry(
                path: path, tensor: name, reason: "\(dtype) shape \(shape) does not fill a whole number of bytes")
        }
        guard end - begin == bits / 8 else {
            throw SafeTensorsError.byteCountMismatch(
                path: path, tensor: name, dtype: dtype, shape: shape, expected: bits / 8, actual: end - begin)
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Sorted by offset, the tensors must tile the data buffer exactly: from 0, no holes,
    /// no overlaps, nothing after the last.
    private static func validateLayout(_ entries: [SafeTensorsEntry], dataSize: Int, path: String) throws {
        var cursor = 0
        var previous: String?
        for entry in entries {
            let range = entry.dataOffsets
            if range.lowerBound < cursor, let previous {
                throw SafeTensorsError.overlappingTensors(path: path, tensor: entry.name, other: previous)
            }
            if range.lowerBound > cursor {
                throw SafeTensorsError.gapBeforeTensor(path: path, tensor: entry.name, expectedBegin: cursor, begin: range.lowerBound)
            }
            if range.upperBound > dataSize {
                throw SafeTensorsError.dataPastEnd(path: path, tensor: entry.name, end: range.upperBound, dataSize: dataSize)
            }
            cursor = range.upperBound
            previous = entry.name
        }
        if cursor != dataSize { throw SafeTensorsError.trailingBytes(path: path, dataEnd: cursor, dataSize: dataSize) }
    }
}
