import NN
import Tensor

extension UNet2DConditionModel {
    /// SDXL's added conditioning, Diffusers' `added_cond_kwargs` for `addition_embed_type:
    /// "text_time"`: the pooled text embedding and the micro-conditioning time ids.
    public struct AddedConditions: DeviceMovable, @unchecked Sendable {
        /// [B, P]: the pooled, projected text embedding (`text_encoder_2`'s `text_embeds`).
        public var textEmbeds: Tensor
        /// [B, N]: the micro-conditioning values, e.g. (original h, w, crop top, left, target h, w)
        /// for the base model, (original h, w, crop top, left, aesthetic score) for the refiner.
        public var timeIds: Tensor

        public init(textEmbeds: Tensor, timeIds: Tensor) {
            self.textEmbeds = textEmbeds
            self.timeIds = timeIds
        }

        public func moved(to device: Device) throws -> Self {
            AddedConditions(textEmbeds: try textEmbeds.moved(to: device), timeIds: try timeIds.moved(to: device))
        }

        public var firstDevice: Device? { textEmbeds.device }
    }

    /// Diffusers' `get_aug_embed` for "text_time": each time id through
    /// `Timesteps(addition_time_embed_dim, flip_sin_to_cos, freq_shift)`, the rows' projections
    /// side by side after the pooled text (text first), through `add_embedding`; [B, 4·C0], to be
    /// added to the time embedding. Nil for a config without an addition embedding.
    public func addedEmbedding(_ added: AddedConditions?, batch: Int, dtype: DType) throws -> Tensor? {
        guard let textTime = config.textTimeEmbedding, let addEmbedding else {
            guard added == nil else {
                throw ModuleError.invalidInput("this UNet has no addition embedding (its config's addition_embed_type is null), "
                                               + "but added conditions were passed")
            }
            return nil
        }
        guard let added else {
            throw ModuleError.invalidInput("this UNet's config has addition_embed_type 'text_time': its forward needs added conditions "
                                           + "(text_embeds [B, P] and time_ids [B, N])")
        }
        let (text, ids) = (added.textEmbeds, added.timeIds)
        guard text.rank == 2, text.shape[0] == batch, ids.rank == 2, ids.shape[0] == batch else {
            throw ModuleError.invalidInput("added conditions must be text_embeds [\(batch), P] and time_ids [\(batch), N] for a batch of "
                                           + "\(batch), got \(text.shape) and \(ids.shape)")
        }
        let (pooled, count, dim) = (text.shape[1], ids.shape[1], textTime.additionTimeEmbedDim)
        let expected = textTime.projectionClassEmbeddingsInputDim
        guard pooled + count * dim == expected else {
            throw ModuleError.invalidInput("projection_class_embeddings_input_dim = \(expected) does not equal text_embeds width \(pooled) "
                                           + "+ \(count) time ids × addition_time_embed_dim \(dim) = \(pooled + count * dim)")
        }
        let projected = try timestepEmbedding(ids.to(.f32).reshaped([-1]), dimension: dim, flipSinToCos: config.flipSinToCos,
                                              downscaleFreqShift: config.freqShift)            // [B·N, dim]
        let timeEmbeds = try projected.reshaped([batch, count * dim])                           // [B, N·dim]
        let input = try Tensor.concat([text.to(.f32), timeEmbeds], axis: 1).to(dtype)          // [B, P + N·dim]
        return try addEmbedding(input)                                                          // [B, 4·C0]
    }
}
