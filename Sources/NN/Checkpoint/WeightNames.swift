/// File names of model weights, as Diffusers (`utils/constants.py`, `_add_variant`) and
/// transformers spell them.
public enum WeightNames {
    /// Diffusers' single-file weights.
    public static let diffusers = "diffusion_pytorch_model.safetensors"
    /// transformers' (text encoders in pipeline folders).
    public static let transformers = "model.safetensors"

    /// Inserts `variant` before the last extension: `a.safetensors` → `a.fp16.safetensors`,
    /// `a.safetensors.index.json` → `a.safetensors.index.fp16.json`.
    public static func addingVariant(_ name: String, _ variant: String?) -> String {
        guard let variant else { return name }
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        parts.insert(variant, at: max(parts.count - 1, 0))
        return parts.joined(separator: ".")
    }

    /// `<weights>.index.json` with the variant as Diffusers saves it.
    public static func indexName(_ weightsName: String, variant: String?) -> String {
        addingVariant(weightsName + ".index.json", variant)
    }

    /// The legacy (read-only) variant index name: `a.safetensors.fp16.index.json`.
    public static func legacyIndexName(_ weightsName: String, variant: String) -> String {
        weightsName + "." + variant + ".index.json"
    }

    /// `diffusion_pytorch_model.fp16-00001-of-00002.safetensors` for shard 1 of 2.
    public static func shardName(_ weightsName: String, variant: String?, index: Int, count: Int) -> String {
        let name = addingVariant(weightsName, variant)
        let suffix = "-" + fiveDigits(index) + "-of-" + fiveDigits(count)
        guard let dot = name.lastIndex(of: ".") else { return name + suffix }
        return String(name[..<dot]) + suffix + String(name[dot...])
    }

    static func fiveDigits(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }

    /// Throws unless `variant` is a plain name usable inside a file name.
    public static func validateVariant(_ variant: String?) throws {
        guard let variant else { return }
        if variant.isEmpty || variant.contains("/") || variant.contains("\\") || variant.hasPrefix(".") || variant.hasSuffix(".") {
            throw CheckpointError.invalidVariant(variant: variant, reason: "it must be a plain name such as fp16")
        }
    }

    /// Whether `name` (extension stripped) is `<base>-NNNNN-of-NNNNN`.
    static func isShard(_ name: String, ofBase base: String) -> Bool {
        var stem = name
        for ext in [".safetensors", ".bin"] where stem.hasSuffix(ext) { stem.removeLast(ext.count) }
        guard stem.hasPrefix(base + "-") else { return false }
        let rest = Array(stem.dropFirst(base.count + 1).utf8)
        guard rest.count == 14 else { return false }
        let digits = rest[0..<5] + rest[9..<14]
        return Array(rest[5..<9]) == Array("-of-".utf8) && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
