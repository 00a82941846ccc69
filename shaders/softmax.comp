#version 450
#extension GL_GOOGLE_include_directive : require
// out[row, k] = exp(inp[row, k] - max_k inp[row, :]) / sum_k exp(inp[row, k] - max)
// over `rows` rows of `classes` floats starting at float `base` of the bindings
// (runtime/ops/softmax.c splits large tensors into row chunks).
// ROWWISE (spec id 0) = 1: one invocation per row (few classes, no barriers;
// rows over vkr_flat_index()); 0: one workgroup per row (workgroup index
// x + y * numWorkGroups.x) with shared-memory max / sum reductions.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint ROWWISE = 0;
layout(std430, binding = 0) writeonly buffer O { float y[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
layout(push_constant) uniform P { uint rows; uint classes; uint base; } p;

shared float red[64];

void main() {
    if (ROWWISE != 0) {
        uint row = vkr_flat_index();
        if (row >= p.rows) return;
        uint off = p.base + row * p.classes;
        float m = x[off];
        for (uint k = 1; k < p.classes; k++) m = max(m, x[off + k]);
        float s = 0.0;
        for (uint k = 0; k < p.classes; k++) s += exp(x[off + k] - m);
        for (uint k = 0; k < p.classes; k++) y[off + k] = exp(x[off + k] - m) / s;
        return;
    }
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) return; // whole workgroup: barriers below stay uniform
    uint t = gl_LocalInvocationID.x;
    uint off = p.base + row * p.classes;
    float m = uintBitsToFloat(0xff800000u); // -inf
    for (uint k = t; k < p.classes; k += 64u) m = max(m, x[off + k]);
    red[t] = m;
    barrier();
    for (uint h = 32u; h > 0u; h >>= 1) {
        if (t < h) red[t] = max(red[t], red[t + h]);
        barrier();
    }
    m = red[0];
    barrier();
    float s = 0.0;
    for (uint k = t; k < p.classes; k += 64u) s += exp(x[off + k] - m);
    red[t] = s;
    barrier();
    for (uint h = 32u; h > 0u; h >>= 1) {
        if (t < h) red[t] += red[t + h];
        barrier();
    }
    s = red[0];
    for (uint k = t; k < p.classes; k += 64u) y[off + k] = exp(x[off + k] - m) / s;
}
