// zlib (Debian's zlib1g-dev) for PNG compression and CRC-32.
#include <zlib.h>
