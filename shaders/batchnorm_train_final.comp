#version 450
#extension GL_GOOGLE_include_directive : require
// Training forward statistics, last step (one invocation per channel):
// save_invstd holds M2 over the whole batch -> 1/sqrt(M2/n + eps); running
// mean / variance updated (variance unbiased with BN_UNBIASED).
#include "common.glsl"
layout(local_size_x = 64) in;
#define RED_WG 64
#include "reduce.glsl"
#include "reduce_bn.glsl"
layout(std430, binding = 0) readonly buffer AM { float amean[]; };
layout(std430, binding = 1) buffer A2 { float am2[]; };
layout(std430, binding = 2) buffer RM { float rmean[]; };
layout(std430, binding = 3) buffer RV { float rvar[]; };
void main() {
    uint c = vkr_flat_index();
    if (c >= pc.C) return;
    float n = pc.cnt_total, mean = amean[c], m2 = am2[c];
    float var = m2 / n;
    am2[c] = 1.0 / sqrt(var + pc.eps);
    float vr = ((pc.flags & BN_UNBIASED) != 0u && n > 1.0) ? m2 / (n - 1.0) : var;
    rmean[c] = pc.momentum * rmean[c] + (1.0 - pc.momentum) * mean;
    rvar[c] = pc.momentum * rvar[c] + (1.0 - pc.momentum) * vr;
}
