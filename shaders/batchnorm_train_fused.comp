#version 450
#extension GL_GOOGLE_include_directive : require
// Training forward, whole tensor in one binding, one workgroup per channel:
// mean (shifted tree sum), then sum of squared deviations (two-pass variance), saved
// mean / invstd, running-stat update, then the normalized output.
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) writeonly buffer SM { float smean[]; };
layout(std430, binding = 2) writeonly buffer SI { float sinv[]; };
layout(std430, binding = 3) buffer RM { float rmean[]; };
layout(std430, binding = 4) buffer RV { float rvar[]; };
layout(std430, binding = 5) readonly buffer X { float x[]; };
layout(std430, binding = 6) readonly buffer G { float g[]; };
layout(std430, binding = 7) readonly buffer Bt { float bt[]; };
void main() {
    uint c = red_group_index();
    if (c >= pc.C) return; // uniform over the workgroup
    uint t = gl_LocalInvocationIndex;
    uint cnt = pc.nb * pc.HW;
    // shifted sum: mean = K + sum(x - K) / cnt with K = the channel's first element, so a constant
    // channel gives mean == K exactly however the device rounds the division (x/y may be x*rcp(y))
    float sh = x[pc.base + c * pc.HW], s = 0.0;
    BnIt it = bn_it(t);
    for (uint j = t; j < cnt; j += RED_WG) {
        s += x[bn_it_addr(it, c)] - sh;
        bn_it_next(it);
    }
    float mean = sh + red_sum(s) / float(cnt);
    float q = 0.0;
    it = bn_it(t);
    for (uint j = t; j < cnt; j += RED_WG) {
        float d = x[bn_it_addr(it, c)] - mean;
        q += d * d;
        bn_it_next(it);
    }
    float m2 = red_sum(q);
    float var = m2 / float(cnt);
    float is = 1.0 / sqrt(var + pc.eps);
    if (t == 0u) {
        smean[c] = mean;
        sinv[c] = is;
        float vr = ((pc.flags & BN_UNBIASED) != 0u && cnt > 1u) ? m2 / float(cnt - 1u) : var;
        rmean[c] = pc.momentum * rmean[c] + (1.0 - pc.momentum) * mean;
        rvar[c] = pc.momentum * rvar[c] + (1.0 - pc.momentum) * vr;
    }
    float gc = g[c], bc = bt[c];
    it = bn_it(t);
    for (uint j = t; j < cnt; j += RED_WG) {
        uint a = bn_it_addr(it, c);
        o[a] = gc * ((x[a] - mean) * is) + bc;
        bn_it_next(it);
    }
}
