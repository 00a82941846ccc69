#version 450
#extension GL_GOOGLE_include_directive : require
// Backward of zero padding = crop: dinp[plane, y, x] = dout[plane, y + pad_t, x + pad_l].
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(push_constant) uniform P {
    uint total, H, W, OH, OW, pad_t, pad_l, base_din, base_dout;
} p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.total) return;
    uint hw = p.H * p.W;
    uint plane = i / hw, r = i - plane * hw;
    uint y = r / p.W, x = r - y * p.W;
    dinp[p.base_din + i] = dout[p.base_dout + plane * p.OH * p.OW + (y + p.pad_t) * p.OW + x + p.pad_l];
}
