#version 450
#extension GL_GOOGLE_include_directive : require
// out[i] = max(inp[i], 0)   (in-place safe: out may alias inp)
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float v = x[i];
    o[i] = v > 0.0 ? v : 0.0;
}
