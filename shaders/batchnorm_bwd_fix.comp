#version 450
#extension GL_GOOGLE_include_directive : require
// Training backward in slot mode, last step (one invocation per channel): the
// two slot elements of channel c (global channel elements 0 and 1) hold
// S1 and S2; copy them to dbeta / dgamma if wanted, then overwrite the slots
// with their own input gradient.  Bindings 0, 3, 4 start at element 0.
#include "common.glsl"
layout(local_size_x = 64) in;
#define RED_WG 64
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) buffer DI { float dinp[]; };
layout(std430, binding = 1) writeonly buffer DG { float dgamma[]; };
layout(std430, binding = 2) writeonly buffer DB { float dbeta[]; };
layout(std430, binding = 3) readonly buffer DO { float dout[]; };
layout(std430, binding = 4) readonly buffer X { float x[]; };
layout(std430, binding = 5) readonly buffer G { float g[]; };
layout(std430, binding = 6) readonly buffer M { float m[]; };
layout(std430, binding = 7) readonly buffer V { float v[]; };
void main() {
    uint c = vkr_flat_index();
    if (c >= pc.C) return;
    uint a0 = bn_acc_addr(c, 0u), a1 = bn_acc_addr(c, 1u);
    float s1 = dinp[a0], s2 = dinp[a1];
    if ((pc.flags & BN_W0) != 0u) dbeta[c] = s1;
    if ((pc.flags & BN_W1) != 0u) dgamma[c] = s2;
    float is = v[c], gi = g[c] * is, mean = m[c];
    float k1 = s1 / pc.cnt_total, k2 = s2 / pc.cnt_total;
    dinp[a0] = gi * (dout[a0] - k1 - (x[a0] - mean) * is * k2);
    dinp[a1] = gi * (dout[a1] - k1 - (x[a1] - mean) * is * k2);
}
