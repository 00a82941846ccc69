#version 450
#extension GL_GOOGLE_include_directive : require
// Global average pooling: out[q] = mean of plane q (HW floats) of inp.
// SMALL (HW <= 256): one invocation per plane, serial sum.
// Otherwise one workgroup per plane: strided per-invocation sums folded by a
// shared-memory tree (no atomics).
#include "common.glsl"
#ifdef SMALL
layout(local_size_x = 64) in;
#define RED_WG 64
#else
layout(local_size_x = 256) in;
#endif
#include "reduce.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint HW, planes, base_o, base_x; } pc;
void main() {
#ifdef SMALL
    uint q = vkr_flat_index();
    if (q >= pc.planes) return;
    uint a = pc.base_x + q * pc.HW;
    float s = 0.0;
    for (uint i = 0u; i < pc.HW; i++) s += x[a + i];
    o[pc.base_o + q] = s / float(pc.HW);
#else
    uint q = red_group_index();
    if (q >= pc.planes) return;
    uint t = gl_LocalInvocationIndex;
    uint a = pc.base_x + q * pc.HW;
    float s = 0.0;
    for (uint i = t; i < pc.HW; i += RED_WG) s += x[a + i];
    s = red_sum(s);
    if (t == 0u) o[pc.base_o + q] = s / float(pc.HW);
#endif
}
