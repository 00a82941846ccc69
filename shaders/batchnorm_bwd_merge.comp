#version 450
#extension GL_GOOGLE_include_directive : require
// Batch-norm backward sums, pass 2: one workgroup per channel adds the P block
// partials (S1, S2) of this chunk (tree order) to the accumulators.
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) buffer A0 { float acc0[]; };
layout(std430, binding = 1) buffer A1 { float acc1[]; };
layout(std430, binding = 2) readonly buffer S { float scratch[]; };
void main() {
    uint c = red_group_index();
    if (c >= pc.C) return;
    uint t = gl_LocalInvocationIndex;
    vec2 s = vec2(0.0);
    for (uint p = t; p < pc.P; p += RED_WG)
        s += vec2(scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p)], scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p + 1u)]);
    s = red_sum2(s);
    if (t != 0u) return;
    uint a0 = bn_acc_addr(c, 0u), a1 = bn_acc_addr(c, 1u);
    if ((pc.flags & BN_FIRST) == 0u) s += vec2(acc0[a0], acc1[a1]);
    if ((pc.flags & BN_W0) != 0u) acc0[a0] = s.x;
    if ((pc.flags & BN_W1) != 0u) acc1[a1] = s.y;
}
