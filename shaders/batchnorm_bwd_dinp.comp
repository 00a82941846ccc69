#version 450
#extension GL_GOOGLE_include_directive : require
// Batch-norm backward, input gradient over one chunk (element-wise):
// inference dinp = dout*gamma*invstd(var); training (BN_TRAIN)
// dinp = gamma*invstd*(dout - S1/n - xhat*S2/n) with S1, S2 from the
// accumulators.  In slot mode the first jp0 channel-local elements of each
// channel hold the accumulators and are left to batchnorm_bwd_fix.
// Each invocation does BN_RUN consecutive elements, reloading the per-channel
// parameters only when the channel changes.
#include "common.glsl"
layout(local_size_x = 256) in;
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };
layout(std430, binding = 4) readonly buffer M { float m[]; };
layout(std430, binding = 5) readonly buffer V { float v[]; };
layout(std430, binding = 6) readonly buffer A0 { float acc0[]; };
layout(std430, binding = 7) readonly buffer A1 { float acc1[]; };
float mc, is, gi, k1, k2;
void load(uint c, bool train) {
    is = (pc.flags & BN_PARAM_VAR) != 0u ? 1.0 / sqrt(v[c] + pc.eps) : v[c];
    gi = g[c] * is;
    if (train) {
        mc = m[c];
        k1 = acc0[bn_acc_addr(c, 0u)] / pc.cnt_total;
        k2 = acc1[bn_acc_addr(c, 1u)] / pc.cnt_total;
    }
}
void main() {
    uint total = pc.nb * pc.C * pc.HW;
    uint i = vkr_flat_index() * BN_RUN;
    if (i >= total) return;
    bool train = (pc.flags & BN_TRAIN) != 0u;
    uint plane = red_udiv(i, pc.mg_hw);
    uint nl = red_udiv(plane, pc.mg_c);
    uint c = plane - nl * pc.C;
    uint hw = i - plane * pc.HW;
    load(c, train);
    uint e = min(i + BN_RUN, total);
    for (; i < e; i++) {
        if (hw == pc.HW) {
            hw = 0u;
            c++;
            if (c == pc.C) {
                c = 0u;
                nl++;
            }
            load(c, train);
        }
        uint a = pc.base + i;
        if (!train) {
            dinp[a] = dout[a] * gi;
        } else if (nl * pc.HW + hw >= pc.jp0) { // else a slot, see batchnorm_bwd_fix
            dinp[a] = gi * (dout[a] - k1 - (x[a] - mc) * is * k2);
        }
        hw++;
    }
}
