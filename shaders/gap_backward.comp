#version 450
#extension GL_GOOGLE_include_directive : require
// Global average pooling backward: dinp[q*HW + i] = dout[q] / HW (element-wise,
// GAP_RUN consecutive elements per invocation, dout reloaded per plane).
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#define GAP_RUN 4u
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(push_constant) uniform P { uint HW, planes, base_i, base_o; uvec2 mg_hw; } pc;
void main() {
    uint total = pc.planes * pc.HW;
    uint i = vkr_flat_index() * GAP_RUN;
    if (i >= total) return;
    uint q = red_udiv(i, pc.mg_hw);
    uint hw = i - q * pc.HW;
    float d = dout[pc.base_o + q] / float(pc.HW);
    uint e = min(i + GAP_RUN, total);
    for (; i < e; i++) {
        if (hw == pc.HW) {
            hw = 0u;
            q++;
            d = dout[pc.base_o + q] / float(pc.HW);
        }
        dinp[pc.base_i + i] = d;
        hw++;
    }
}
