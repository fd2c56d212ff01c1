// The library product: one import for the whole toolkit.
@_exported import Tensor
@_exported import NN
@_exported import Offload
@_exported import Models
@_exported import Tokenizers
@_exported import Schedulers
@_exported import Images
@_exported import Pipelines
