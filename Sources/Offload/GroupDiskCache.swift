import Foundation
import NN
import Tensor

/// Group files of `offloadToDiskPath`: each group's weights written once to
/// `group_<hash of its id>.safetensors` (tensors `tensor_0`…, in group order) and mapped from
/// there, so the host keeps no copy. A file from an earlier run is reused only if it holds the
/// same tensors with the same checksum; anything else is an error, never silently stale.
enum GroupDiskCache {
    static let checksumKey = "swift_diffusers_checksum"

    /// Where packed copies of mapped weights go when no offload folder is given: /var/tmp,
    /// which is disk by convention (a tmpfs /tmp would put the "disk tier" back in memory),
    /// else the temporary directory.
    static var defaultPackedWeightFolder: String {
        FileManager.default.isWritableFile(atPath: "/var/tmp") ? "/var/tmp" : NSTemporaryDirectory()
    }

    /// Creates `folder` if needed; throws unless it is a writable directory.
    static func prepare(folder: String) throws {
        do { _ = try OutputFolder.create(folder) } catch {
            throw OffloadError.invalidOption("the offload folder cannot be used: \(error)")
        }
    }

    /// Moves `group`'s home to its file in `folder`, writing the file when absent.
    static func rehome(_ group: ParameterGroup, folder: String) throws {
        let path = folder + "/group_" + String(fnv1a(Array(group.id.utf8)), radix: 16) + ".safetensors"
        let checksum = String(try group.homes.reduce(UInt64(14695981039346656037)) { try fnv1a($1, seed: $0) }, radix: 16)
        if !FileManager.default.fileExists(atPath: path) {
            let named = Dictionary(uniqueKeysWithValues: group.homes.enumerated().map { ("tensor_\($0.offset)", $0.element) })
            do {
                try SafeTensorsWriter.write(named, to: path, metadata: ["format": "pt", checksumKey: checksum])
            } catch {
                throw OffloadError.invalidOption("cannot write the group file \(path) for \(group.id): \(error)")
            }
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch {
            throw OffloadError.invalidOption("the group file \(path) for \(group.id) is unreadable (\(error)); delete it to write it again")
        }
        guard file.metadata?[checksumKey] == checksum, file.names.count == group.homes.count else {
            throw OffloadError.invalidOption("the group file \(path) for \(group.id) holds other weights than the model (stale from an earlier run?); delete it or use another offload folder")
        }
        let mapped = try group.homes.indices.map { try file.tensor(named: "tensor_\($0)") }
        for (home, tensor) in zip(group.homes, mapped) where home.shape != tensor.shape || home.dtype != tensor.dtype {
            throw OffloadError.invalidOption("the group file \(path) for \(group.id) has tensors of other shapes than the model")
        }
        group.rehome(mapped)
    }

    /// FNV-1a over a tensor's bytes, continuing from `seed`.
    static func fnv1a(_ tensor: Tensor, seed: UInt64) throws -> UInt64 {
        let bytes = try tensor.contiguous()
        return withExtendedLifetime(bytes) {
            fnv1a(UnsafeRawBufferPointer(start: bytes.data, count: bytes.byteCount), seed: seed)
        }
    }

    static func fnv1a<C: Collection>(_ bytes: C, seed: UInt64 = 14695981039346656037) -> UInt64 where C.Element == UInt8 {
        var hash = seed
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 1099511628211 }
        return hash
    }
}
