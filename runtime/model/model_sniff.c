/* What a file that is not a vkrun model is, from its first bytes, so that the error says which
 * converter to run instead of "header length ... is impossible". */
#include "model/model_internal.h"

#include <string.h>

const char *vkr__foreign_format(const unsigned char *b, size_t n) {
    static const unsigned char hdf5[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(b, hdf5, 8))
        return "an HDF5 file (Keras .h5 weights): convert it first with "
               "`vkrun-convert FILE.h5 -o MODEL.safetensors` (in a source checkout: /usr/bin/python3 tools/convert.py)";
    if (n >= 4 && !memcmp(b, "PK\3\4", 4))
        return "a zip archive (a PyTorch .pth/.pt checkpoint?): convert it first with "
               "`vkrun-convert FILE.pth -o MODEL.safetensors` (in a source checkout: /usr/bin/python3 tools/convert.py)";
    if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
        return "a Python pickle (a legacy PyTorch checkpoint?): convert it first with "
               "`vkrun-convert FILE.th -o MODEL.safetensors` (in a source checkout: /usr/bin/python3 tools/convert.py)";
    if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) return "a NumPy .npy array, not a model";
    if (n >= 8 && !memcmp(b, png, 8)) return "a PNG image, not a model";
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "a JPEG image, not a model";
    if (n >= 2 && b[0] == 0x08 && b[1] >= 1 && b[1] <= 12) /* protobuf field 1 (ir_version), varint */
        return "probably an ONNX model (protobuf): convert it first with `vkrun-convert FILE.onnx -o MODEL.safetensors` "
               "(in a source checkout: /usr/bin/python3 tools/convert.py)";
    return NULL;
}
