/* stb_image compiled into fuzz_image with the fuzzer's coverage and ASan: these definitions
 * take the place of Debian's libstb.so for the library linked into this binary, so that the
 * fuzzer sees (and ASan checks) the decoders themselves.  Same header as libstb-dev's. */
#define STB_IMAGE_IMPLEMENTATION
#include "stb_image.h"
