// libwebp (Debian's libwebp-dev) for WebP output: the encoder, the decoder (tests read files
// back with it) and libwebpmux, which adds the EXIF chunk that carries generation parameters.
// libwebp reports failures through return values, so no shim code is needed.
#include <webp/encode.h>
#include <webp/decode.h>
#include <webp/mux.h>
