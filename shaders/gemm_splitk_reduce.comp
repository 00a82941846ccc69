#version 450
#extension GL_GOOGLE_include_directive : require
// Second pass of split-K (weight and bias gradients, see gemm_conv.glsl):
// C[i] (+)= part[0][i] + part[1][i] + ... + part[S-1][i] for i < n, always in split
// order, so the result is the same on every run (no atomics).  beta = 1 adds to C
// (the partial of a later batch chunk).  Four consecutive elements per invocation.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Part { float part[]; };
layout(std430, binding = 1) buffer Out { float c[]; };
layout(push_constant) uniform P { uint n, S, offP, offC, beta; } p;
void main() {
    uint i0 = vkr_flat_index() * 4u;
    if (i0 >= p.n) return;
    uint e = min(i0 + 4u, p.n);
    for (uint i = i0; i < e; i++) {
        float v = part[p.offP + i];
        for (uint s = 1u; s < p.S; s++) v += part[p.offP + s * p.n + i];
        if (p.beta != 0u) v = c[p.offC + i] + v;
        c[p.offC + i] = v;
    }
}
