#version 450
#extension GL_GOOGLE_include_directive : require
// Training forward statistics, pass 1 of the two-pass partial scheme over one
// chunk: workgroup (p, c) reduces block p (elements [p*B, p*B+B) of channel c)
// to (mean, M2) with a block-local two-pass variance (the mean a shifted sum, so
// a constant block gives its value exactly, whatever the division rounding).  With P == 1 it merges
// straight into the accumulators (save_mean = mean, save_invstd = M2 so far);
// otherwise it writes the partial into the chunk's output range (scratch,
// overwritten later by batchnorm_apply) at channel-local elements jp0+2p, +1.
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) buffer S { float scratch[]; };
layout(std430, binding = 1) buffer AM { float amean[]; };
layout(std430, binding = 2) buffer A2 { float am2[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
void main() {
    uint wg = red_group_index();
    if (wg >= pc.P * pc.C) return;
    uint c = wg / pc.P, p = wg - c * pc.P;
    uint t = gl_LocalInvocationIndex;
    uint cnt = pc.nb * pc.HW;
    uint j0 = p * pc.B, j1 = min(j0 + pc.B, cnt);
    float sh = x[bn_it_addr(bn_it(j0), c)], s = 0.0; // shift: the block's first element
    BnIt it = bn_it(j0 + t);
    for (uint j = j0 + t; j < j1; j += RED_WG) {
        s += x[bn_it_addr(it, c)] - sh;
        bn_it_next(it);
    }
    float nbk = float(j1 - j0);
    float mean = sh + red_sum(s) / nbk;
    float q = 0.0;
    it = bn_it(j0 + t);
    for (uint j = j0 + t; j < j1; j += RED_WG) {
        float d = x[bn_it_addr(it, c)] - mean;
        q += d * d;
        bn_it_next(it);
    }
    float m2 = red_sum(q);
    if (t != 0u) return;
    if (pc.P == 1u) {
        vec3 r = vec3(nbk, mean, m2);
        if ((pc.flags & BN_FIRST) == 0u) r = red_chan_merge(vec3(pc.cnt_prev, amean[c], am2[c]), r);
        amean[c] = r.y;
        am2[c] = r.z;
    } else {
        scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p)] = mean;
        scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p + 1u)] = m2;
    }
}
