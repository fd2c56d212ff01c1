import CZlib

/// The parts of zlib that PNG needs: CRC-32, bounded inflation and deflation.
enum Zlib {
    /// CRC-32 (the PNG/zlib polynomial) of `bytes`, continuing from `crc`.
    static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var value = UInt(crc)
        var rest = bytes
        while let base = rest.baseAddress, !rest.isEmpty {
            let n = min(rest.count, Int(UInt32.max >> 1))
            value = CZlib.crc32(value, base.assumingMemoryBound(to: Bytef.self), uInt(n))
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
        return UInt32(truncatingIfNeeded: value)
    }

    static func crc32(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0, continuing: crc) }
    }

    /// Inflates the zlib stream spread over `pieces` (in order), keeping at most `limit`
    /// bytes: a stream that would produce more stops there and the surplus is ignored, so
    /// memory stays bounded however the data was crafted (no decompression bombs). The output
    /// grows as data arrives rather than being allocated up front, so a tiny file that merely
    /// claims a huge image fails without a huge allocation. Once `limit` bytes are out, the
    /// stream is read on one byte of room at a time, so that its checksum is still verified
    /// when it ends there.
    ///
    /// - Returns: the bytes inflated (fewer than `limit` when the stream or input ends early).
    /// - Throws: `ImageError.compression` for corrupt data, naming `source`.
    static func inflate(pieces: [UnsafeRawBufferPointer], limit: Int, source: String) throws -> [UInt8] {
        var stream = z_stream()
        let initStatus = inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw ImageError.compression(source: source, detail: "inflateInit failed (\(initStatus))")
        }
        defer { inflateEnd(&stream) }
        var scratch: UInt8 = 0

        var output = [UInt8](repeating: 0, count: min(limit, 1 << 20))
        var produced = 0
        let chunkLimit = Int(UInt32.max >> 1)
        for piece in pieces {
            guard let inputBase = piece.baseAddress else { continue }
            var consumed = 0
            while consumed < piece.count {
                if produced == output.count && output.count < limit {
                    output.append(contentsOf: repeatElement(0, count: min(limit - output.count, output.count)))
                }
                let full = produced == limit
                let inCount = min(piece.count - consumed, chunkLimit)
                let outCount = full ? 1 : min(output.count - produced, chunkLimit)
                stream.next_in = UnsafeMutablePointer(mutating: (inputBase + consumed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(inCount)
                stream.avail_out = uInt(outCount)
                // zlib keeps its own window, so the output may move between calls.
                let status = full
                    ? withUnsafeMutablePointer(to: &scratch) { byte in
                        stream.next_out = byte
                        return CZlib.inflate(&stream, Z_NO_FLUSH)
                    }
                    : output.withUnsafeMutableBufferPointer { buffer in
                        stream.next_out = buffer.baseAddress.map { $0 + produced }
                        return CZlib.inflate(&stream, Z_NO_FLUSH)
                    }
                let usedIn = inCount - Int(stream.avail_in)
                let usedOut = outCount - Int(stream.avail_out)
                consumed += usedIn
                if full {
                    if usedOut > 0 { return output }   // more data than the image needs: ignored
                } else {
                    produced += usedOut
                }
                switch status {
                case Z_STREAM_END:
                    output.removeLast(output.count - produced)
                    return output
                case Z_OK, Z_BUF_ERROR:
                    guard usedIn > 0 || usedOut > 0 else {
                        throw ImageError.compression(source: source, detail: message(of: stream, status: status))
                    }
                case Z_NEED_DICT:
                    throw ImageError.compression(
                        source: source, detail: "the image data asks for a preset dictionary, which PNG forbids")
                default:
                    throw ImageError.compression(source: source, detail: message(of: stream, status: status))
                }
            }
        }
        output.removeLast(output.count - produced)
        return output
    }

    private static func message(of stream: z_stream, status: Int32) -> String {
        if let text = stream.msg { return String(cString: text) }
        switch status {
        case Z_DATA_ERROR: return "corrupt compressed data"
        case Z_MEM_ERROR: return "out of memory"
        case Z_BUF_ERROR: return "compressed data ends early"
        default: return "status \(status)"
        }
    }

    /// Compresses `input` as one zlib stream at `level` (0–9).
    static func deflate(_ input: UnsafeRawBufferPointer, level: Int, destination: String) throws -> [UInt8] {
        var stream = z_stream()
        let clamped = Int32(max(0, min(9, level)))
        var status = deflateInit_(&stream, clamped, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw ImageError.compression(source: destination, detail: "deflateInit failed (\(status))")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var consumed = 0
        var flush: Int32 = Z_NO_FLUSH
        repeat {
            let inCount = min(input.count - consumed, Int(UInt32.max >> 1))
            flush = consumed + inCount == input.count ? Z_FINISH : Z_NO_FLUSH
            if let base = input.baseAddress {
                stream.next_in = UnsafeMutablePointer(mutating: (base + consumed).assumingMemoryBound(to: Bytef.self))
            }
            stream.avail_in = uInt(inCount)
            repeat {
                let produced = buffer.withUnsafeMutableBytes { out -> Int in
                    stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(out.count)
                    status = CZlib.deflate(&stream, flush)
                    return out.count - Int(stream.avail_out)
                }
                guard status != Z_STREAM_ERROR else {
                    throw ImageError.compression(source: destination, detail: message(of: stream, status: status))
                }
                output.append(contentsOf: buffer[..<produced])
            } while stream.avail_out == 0
            consumed += inCount   // with room left over, deflate has taken all the input
        } while flush != Z_FINISH
        guard status == Z_STREAM_END else {
            throw ImageError.compression(source: destination, detail: message(of: stream, status: status))
        }
        return output
    }
}
