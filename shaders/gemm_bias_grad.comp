#version 450
#extension GL_GOOGLE_include_directive : require
// d-bias of conv2d / dense: dbias[k] (+)= sum over img < nb, q < hw of dout[img][k][q].
// One workgroup per channel k (spread over x and y); a strided per-invocation sum, then a
// shared-memory tree reduction (no atomics).  beta = 1 adds to dbias (later batch chunks).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) buffer G { float dbias[]; };
layout(push_constant) uniform P { int nb, k, hw, offD, beta; } p;
shared float part[256];
void main() {
    int ch = int(gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x);
    if (ch >= p.k) return; // uniform over the workgroup
    int t = int(gl_LocalInvocationID.x);
    float s = 0.0;
    if (p.hw >= 64) {
        for (int img = 0; img < p.nb; img++) {
            int base = p.offD + (img * p.k + ch) * p.hw;
            for (int q = t; q < p.hw; q += 256) s += dout[base + q];
        }
    } else { // small planes (dense: hw = 1): spread the images over the invocations
        int total = p.nb * p.hw;
        for (int e = t; e < total; e += 256) {
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
    if (t == 0) dbias[ch] = p.beta != 0 ? dbias[ch] + part[0] : part[0];
}
