#version 450
#extension GL_GOOGLE_include_directive : require
// out = gamma * (x - mean) * invstd + beta over one chunk of samples (element-wise).
// Inference forward (parameter 5 = running var, BN_PARAM_VAR) and the last pass
// of the training forward (parameter 5 = saved invstd).  Each invocation does
// BN_RUN consecutive elements and reloads the per-channel parameters only when
// the channel changes (loads dominate on CPU devices).
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer G { float g[]; };
layout(std430, binding = 3) readonly buffer Bt { float bt[]; };
layout(std430, binding = 4) readonly buffer M { float m[]; };
layout(std430, binding = 5) readonly buffer V { float v[]; };
float mc, gi, bc;
void load(uint c) {
    float is = (pc.flags & BN_PARAM_VAR) != 0u ? 1.0 / sqrt(v[c] + pc.eps) : v[c];
    mc = m[c];
    gi = g[c] * is;
    bc = bt[c];
}
void main() {
    uint total = pc.nb * pc.C * pc.HW;
    uint i = vkr_flat_index() * BN_RUN;
    if (i >= total) return;
    uint plane = red_udiv(i, pc.mg_hw);
    uint hw = i - plane * pc.HW;
    uint c = plane - red_udiv(plane, pc.mg_c) * pc.C;
    load(c);
    uint e = min(i + BN_RUN, total);
    for (; i < e; i++) {
        if (hw == pc.HW) {
            hw = 0u;
            c = c + 1u == pc.C ? 0u : c + 1u;
            load(c);
        }
        o[pc.base + i] = (x[pc.base + i] - mc) * gi + bc;
        hw++;
    }
}
