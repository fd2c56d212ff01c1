import Diffusers
import Foundation

/// Image files `--out` may name.
enum ImageFormat {
    static func check(_ path: String, option: String) throws {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard name.lowercased().hasSuffix(".png") else {
            throw ImageError.invalidArgument("\(option) \(path): only .png images can be written")
        }
    }
}

extension Generate {
    /// The bytes of `picture` in the format `path` names, with the run's parameters.
    func encodeImage(_ picture: Image, path: String, parameters: String) throws -> [UInt8] {
        try PNGEncoder().encode(picture)
    }

    /// How the image was made, in AUTOMATIC1111's `parameters` text.
    func generationParameters(_ pipeline: StableDiffusionPipeline, folder: String, seed: UInt64, images: Tensor) -> String {
        ""
    }
}
