#version 450
#extension GL_GOOGLE_include_directive : require
// out[plane, y, x] = inp[plane, y - pad_t, x - pad_l] inside, 0 in the padding.
// One invocation per output element; planes are (n, c) pairs.
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
layout(push_constant) uniform P {
    uint total, H, W, OH, OW, pad_t, pad_l, base_out, base_in;
} p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.total) return;
    uint ohw = p.OH * p.OW;
    uint plane = i / ohw, r = i - plane * ohw;
    uint oy = r / p.OW, ox = r - oy * p.OW;
    int y = int(oy) - int(p.pad_t), xx = int(ox) - int(p.pad_l);
    float v = 0.0;
    if (y >= 0 && y < int(p.H) && xx >= 0 && xx < int(p.W))
        v = x[p.base_in + plane * p.H * p.W + uint(y) * p.W + uint(xx)];
    o[p.base_out + i] = v;
}
