#version 450
#extension GL_GOOGLE_include_directive : require
// Batch-norm backward, whole tensor in one binding, one workgroup per channel.
// Inference (frozen statistics, parameter 5 = running var): one pass computes
// dinp = dout*gamma*invstd and the tree sums S1 = sum dout, S2 = sum dout*xhat.
// Training (BN_TRAIN, parameter 5 = saved invstd): pass 1 reduces S1, S2,
// pass 2 writes dinp = gamma*invstd*(dout - S1/n - xhat*S2/n).
// dgamma = S2, dbeta = S1 (BN_W1 / BN_W0), dinp only with BN_DINP.
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) writeonly buffer DG { float dgamma[]; };
layout(std430, binding = 2) writeonly buffer DB { float dbeta[]; };
layout(std430, binding = 3) readonly buffer DO { float dout[]; };
layout(std430, binding = 4) readonly buffer X { float x[]; };
layout(std430, binding = 5) readonly buffer G { float g[]; };
layout(std430, binding = 6) readonly buffer M { float m[]; };
layout(std430, binding = 7) readonly buffer V { float v[]; };
void main() {
    uint c = red_group_index();
    if (c >= pc.C) return;
    uint t = gl_LocalInvocationIndex;
    uint cnt = pc.nb * pc.HW;
    bool train = (pc.flags & BN_TRAIN) != 0u, wd = (pc.flags & BN_DINP) != 0u;
    float mean = m[c], gc = g[c];
    float is = (pc.flags & BN_PARAM_VAR) != 0u ? 1.0 / sqrt(v[c] + pc.eps) : v[c];
    float gi = gc * is;
    vec2 s = vec2(0.0);
    BnIt it = bn_it(t);
    for (uint j = t; j < cnt; j += RED_WG) {
        uint a = bn_it_addr(it, c);
        float d = dout[a];
        s += vec2(d, d * ((x[a] - mean) * is));
        if (wd && !train) dinp[a] = d * gi;
        bn_it_next(it);
    }
    s = red_sum2(s);
    if (t == 0u) {
        if ((pc.flags & BN_W0) != 0u) dbeta[c] = s.x;
        if ((pc.flags & BN_W1) != 0u) dgamma[c] = s.y;
    }
    if (!(wd && train)) return;
    float k1 = s.x / float(cnt), k2 = s.y / float(cnt);
    it = bn_it(t);
    for (uint j = t; j < cnt; j += RED_WG) {
        uint a = bn_it_addr(it, c);
        float xh = (x[a] - mean) * is;
        dinp[a] = gi * (dout[a] - k1 - xh * k2);
        bn_it_next(it);
    }
}
