// The library product: one import for the whole toolkit.
@_exported import Tensor
@_exported import NN
@_exported import Schedulers
