import JSON
/// The settings an image was generated with, written as AUTOMATIC1111's stable-diffusion-webui
/// writes them ("infotext", `modules/processing.py: create_infotext`), so that A1111's PNG Info
/// tab, ComfyUI, Civitai and other readers of the `parameters` text understand our files.
///
/// The format, for the fields held here:
///
///     <prompt>
///     Negative prompt: <negative prompt>
///     Steps: 25, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: demo, <extra>
///
/// - The prompt comes first, as typed (it may span lines).
/// - The "Negative prompt: " line is there only when the negative prompt is not empty.
/// - The last line lists `key: value` pairs joined by ", " in A1111's order: Steps, Sampler,
///   CFG scale, Seed, Size (`WIDTHxHEIGHT`, a lower-case x), Model, then the extra pairs in the
///   order given (A1111 puts its own extras — Denoising strength, Clip skip, Version … — after
///   Model as well). A field that is nil is left out; a pair whose key equals its value is
///   written as the key alone.
/// - A value containing a comma, colon or line break is written as a JSON string (A1111's
///   `quote`: `json.dumps(value, ensure_ascii=False)`), so the line still splits at ", ".
/// - Numbers are written as Python's `str` writes them: steps and seed as integers, the CFG
///   scale with a decimal point ("7.0", "7.5").
/// - Finally leading and trailing white space of the whole text is removed (A1111's `.strip()`),
///   so an empty prompt leaves the parameters line first.
public struct GenerationParameters: Sendable {
    public var prompt: String
    public var negativePrompt: String
    public var steps: Int?
    /// A1111's sampler name ("Euler a", "DPM++ 2M"); `samplerName(forScheduler:)` maps
    /// Diffusers scheduler classes to these names.
    public var sampler: String?
    public var cfgScale: Float?
    public var seed: UInt64?
    public var width: Int?
    public var height: Int?
    /// The checkpoint's name, as A1111 shows it (the file or folder name without extension).
    public var model: String?
    /// Further pairs, written after Model in this order ("Denoising strength", "Version", …).
    public var extra: [(key: String, value: String)]

    public init(prompt: String, negativePrompt: String = "", steps: Int? = nil, sampler: String? = nil,
                cfgScale: Float? = nil, seed: UInt64? = nil, width: Int? = nil, height: Int? = nil,
                model: String? = nil, extra: [(key: String, value: String)] = []) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.sampler = sampler
        self.cfgScale = cfgScale
        self.seed = seed
        self.width = width
        self.height = height
        self.model = model
        self.extra = extra
    }

    /// The `key: value` pairs of the parameters line, in order, values not yet quoted.
    public var fields: [(key: String, value: String)] {
        var fields: [(key: String, value: String)] = []
        if let steps { fields.append(("Steps", String(steps))) }
        if let sampler { fields.append(("Sampler", sampler)) }
        if let cfgScale { fields.append(("CFG scale", pythonFloat(cfgScale))) }
        if let seed { fields.append(("Seed", String(seed))) }
        if let width, let height { fields.append(("Size", "\(width)x\(height)")) }
        if let model { fields.append(("Model", model)) }
        return fields + extra
    }

    /// The text A1111 stores under `parameters`.
    public var infotext: String {
        let line = fields.map { $0.key == $0.value ? $0.key : "\($0.key): \(GenerationParameters.quote($0.value))" }
            .joined(separator: ", ")
        let negative = negativePrompt.isEmpty ? "" : "\nNegative prompt: \(negativePrompt)"
        return strippingWhitespace("\(prompt)\(negative)\n\(line)")
    }

    /// `value` as A1111 writes it in the parameters line: unchanged unless it contains a comma,
    /// a colon or a line feed, in which case it becomes a JSON string literal with only the
    /// characters JSON requires escaped (non-ASCII kept, as `ensure_ascii=False` does).
    public static func quote(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == ":" || $0.unicodeScalars.contains("\n") }) else { return value }
        // serde_json's escaping (the compact style) is json.dumps(ensure_ascii=False)'s.
        return JSONWriter.render(.string(value), style: .compact)
    }

    /// A1111's name for the sampler a Diffusers scheduler class implements with its default
    /// configuration, from the correspondence table of Diffusers' scheduler documentation
    /// (PNDM with `skip_prk_steps`, Stable Diffusion's default, is A1111's PLMS), or nil for a
    /// class without an A1111 counterpart.
    public static func samplerName(forScheduler className: String) -> String? {
        switch className {
        case "DDIMScheduler": return "DDIM"
        case "PNDMScheduler": return "PLMS"
        case "EulerDiscreteScheduler": return "Euler"
        case "EulerAncestralDiscreteScheduler": return "Euler a"
        case "DPMSolverMultistepScheduler": return "DPM++ 2M"
        case "HeunDiscreteScheduler": return "Heun"
        case "LMSDiscreteScheduler": return "LMS"
        case "KDPM2DiscreteScheduler": return "DPM2"
        case "KDPM2AncestralDiscreteScheduler": return "DPM2 a"
        case "DPMSolverSinglestepScheduler": return "DPM++ SDE"
        default: return nil
        }
    }
}

/// `value` as Python's `str` writes the number the user typed: the shortest digits that read
/// back to it, with ".0" on whole numbers ("7.5", "7.0", "1e-05" — the same spelling as
/// Python's for scales of any sensible size). The Float's own shortest form is used because
/// widening it to Double first would show binary noise ("7.300000190734863" for 7.3).
private func pythonFloat(_ value: Float) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
    return value.description
}

/// `text` without leading and trailing white space, as Python's `str.strip()`.
private func strippingWhitespace(_ text: String) -> String {
    let scalars = text.unicodeScalars
    guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
          let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
    return String(scalars[first...last])
}
