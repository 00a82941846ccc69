#version 450
#extension GL_GOOGLE_include_directive : require
// d-bias of conv2d / dense: dbias[k] (+)= sum over img < nb, q < hw of dout[img][k][q].
// One workgroup per channel k (spread over x and y); a strided per-invocation sum, then a
// shared-memory tree reduction (no atomics).  beta = 1 adds to dbias (later batch chunks).
// Split-K (spec constant SPLIT = 1, ipb > 0): workgroup z sums images [z*ipb, z*ipb + ipb) and writes its partial to
// dbias[z*k + ch] (the stream's scratch); gemm_splitk_reduce.comp adds them in order.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const int SPLIT = 0; // 1: split-K partials (ipb > 0)
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) buffer G { float dbias[]; };
layout(push_constant) uniform P { int nb, k, hw, offD, beta, ipb; } p;
shared float part[256];
void main() {
    int ch = int(gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x);
    if (ch >= p.k) return; // uniform over the workgroup
    int t = int(gl_LocalInvocationID.x);
    int z = SPLIT != 0 ? int(gl_WorkGroupID.z) : 0;
    int i0 = SPLIT != 0 ? z * p.ipb : 0, i1 = SPLIT != 0 ? min(i0 + p.ipb, p.nb) : p.nb;
    float s = 0.0;
    if (p.hw >= 64) {
        for (int img = i0; img < i1; img++) {
            int base = p.offD + (img * p.k + ch) * p.hw;
            for (int q = t; q < p.hw; q += 256) s += dout[base + q];
        }
    } else { // small planes (dense: hw = 1): spread the images over the invocations
        int e0 = i0 * p.hw, total = i1 * p.hw;
        for (int e = e0 + t; e < total; e += 256) {
            int img = e / p.hw;
            s += dout[p.offD + (img * p.k + ch) * p.hw + (e - img * p.hw)];
        }
    }
    part[t] = s;
    barrier();
    for (int w = 128; w > 0; w >>= 1) {
        if (t < w) part[t] += part[t + w];
        barrier();
    }
    if (t != 0) return;
    if (SPLIT != 0) dbias[z * p.k + ch] = part[0];
    else dbias[ch] = p.beta != 0 ? dbias[ch] + part[0] : part[0];
}
