#version 450
#extension GL_GOOGLE_include_directive : require
// Inverted dropout with a counter-based mask (runtime/ops/dropout.c), forward and backward alike:
//   out[i] = keep(first + i) ? inp[i] * scale : 0
// keep(j): h = mix(mix(j_lo ^ k1) ^ (j_hi + k0)) (lowbias32 finalizer), kept when
// (h >> 8) >= threshold = floor(rate * 2^24); k0, k1 come from (seed, salt, step) on the host.
// In-place safe (out may alias inp).
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
layout(push_constant) uniform P { uint n; uint first_lo; uint first_hi; uint k0; uint k1; uint threshold; float scale; } p;

uint mix32(uint v) {
    v ^= v >> 16;
    v *= 0x7feb352du;
    v ^= v >> 15;
    v *= 0x846ca68bu;
    v ^= v >> 16;
    return v;
}

void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    uint lo = p.first_lo + i, hi = p.first_hi + (lo < i ? 1u : 0u);
    uint h = mix32(mix32(lo ^ p.k1) ^ (hi + p.k0));
    o[i] = (h >> 8) >= p.threshold ? x[i] * p.scale : 0.0;
}
