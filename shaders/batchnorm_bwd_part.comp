#version 450
#extension GL_GOOGLE_include_directive : require
// Batch-norm backward sums, pass 1 of the two-pass partial scheme over one
// chunk: workgroup (p, c) reduces block p of channel c to S1 = sum dout and
// S2 = sum dout*xhat.  With P == 1 it adds straight into the accumulators
// (acc0 = S1, acc1 = S2; plain [c] or dinp slots); otherwise it writes the
// partial into the chunk's dinp range (scratch) at channel-local jp0+2p, +1.
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) buffer S { float scratch[]; };
layout(std430, binding = 1) buffer A0 { float acc0[]; };
layout(std430, binding = 2) buffer A1 { float acc1[]; };
layout(std430, binding = 3) readonly buffer DO { float dout[]; };
layout(std430, binding = 4) readonly buffer X { float x[]; };
layout(std430, binding = 5) readonly buffer M { float m[]; };
layout(std430, binding = 6) readonly buffer V { float v[]; };
void main() {
    uint wg = red_group_index();
    if (wg >= pc.P * pc.C) return;
    uint c = wg / pc.P, p = wg - c * pc.P;
    uint t = gl_LocalInvocationIndex;
    uint cnt = pc.nb * pc.HW;
    uint j0 = p * pc.B, j1 = min(j0 + pc.B, cnt);
    float mean = m[c];
    float is = (pc.flags & BN_PARAM_VAR) != 0u ? 1.0 / sqrt(v[c] + pc.eps) : v[c];
    vec2 s = vec2(0.0);
    BnIt it = bn_it(j0 + t);
    for (uint j = j0 + t; j < j1; j += RED_WG) {
        uint a = bn_it_addr(it, c);
        float d = dout[a];
        s += vec2(d, d * ((x[a] - mean) * is));
        bn_it_next(it);
    }
    s = red_sum2(s);
    if (t != 0u) return;
    if (pc.P == 1u) {
        uint a0 = bn_acc_addr(c, 0u), a1 = bn_acc_addr(c, 1u);
        if ((pc.flags & BN_FIRST) == 0u) s += vec2(acc0[a0], acc1[a1]);
        if ((pc.flags & BN_W0) != 0u) acc0[a0] = s.x;
        if ((pc.flags & BN_W1) != 0u) acc1[a1] = s.y;
    } else {
        scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p)] = s.x;
        scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p + 1u)] = s.y;
    }
}
