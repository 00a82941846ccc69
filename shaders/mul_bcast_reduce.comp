#version 450
#extension GL_GOOGLE_include_directive : require
// Gradient of the broadcast factor: db[q] = sum over the plane q (HW floats) of dout * a.
// SMALL (HW <= 256): one invocation per plane, serial sum.  Otherwise one workgroup per plane:
// strided per-invocation sums folded by a shared-memory tree (no atomics; as gap_forward).
#include "common.glsl"
#ifdef SMALL
layout(local_size_x = 64) in;
#define RED_WG 64
#else
layout(local_size_x = 256) in;
#endif
#include "reduce.glsl"
layout(std430, binding = 0) writeonly buffer DB { float db[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer A { float a[]; };
layout(push_constant) uniform P { uint HW, planes, base_o, base_d, base_a; } pc;
void main() {
#ifdef SMALL
    uint q = vkr_flat_index();
    if (q >= pc.planes) return;
    uint d0 = pc.base_d + q * pc.HW, a0 = pc.base_a + q * pc.HW;
    float s = 0.0;
    for (uint i = 0u; i < pc.HW; i++) s += dout[d0 + i] * a[a0 + i];
    db[pc.base_o + q] = s;
#else
    uint q = red_group_index();
    if (q >= pc.planes) return;
    uint t = gl_LocalInvocationIndex;
    uint d0 = pc.base_d + q * pc.HW, a0 = pc.base_a + q * pc.HW;
    float s = 0.0;
    for (uint i = t; i < pc.HW; i += RED_WG) s += dout[d0 + i] * a[a0 + i];
    s = red_sum(s);
    if (t == 0u) db[pc.base_o + q] = s;
#endif
}
