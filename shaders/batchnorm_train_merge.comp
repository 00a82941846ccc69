#version 450
#extension GL_GOOGLE_include_directive : require
// Training forward statistics, pass 2: one workgroup per channel merges the P
// block partials (mean, M2) of this chunk (Chan's formula, tree order) and the
// accumulators of earlier chunks into save_mean (mean) / save_invstd (M2).
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) buffer AM { float amean[]; };
layout(std430, binding = 1) buffer A2 { float am2[]; };
layout(std430, binding = 2) readonly buffer S { float scratch[]; };
void main() {
    uint c = red_group_index();
    if (c >= pc.C) return;
    uint t = gl_LocalInvocationIndex;
    uint cnt = pc.nb * pc.HW;
    vec3 acc = vec3(0.0);
    for (uint p = t; p < pc.P; p += RED_WG) {
        float n = float(min(pc.B, cnt - p * pc.B));
        vec3 v = vec3(n, scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p)], scratch[pc.base + bn_addr(c, pc.jp0 + 2u * p + 1u)]);
        acc = red_chan_merge(acc, v);
    }
    vec3 r = red_chan3(acc);
    if (t != 0u) return;
    if ((pc.flags & BN_FIRST) == 0u) r = red_chan_merge(vec3(pc.cnt_prev, amean[c], am2[c]), r);
    amean[c] = r.y;
    am2[c] = r.z;
}
