#version 450
#extension GL_GOOGLE_include_directive : require
// out[i] = a[i] * b[i]   (in-place safe: out may alias a or b)
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    o[i] = a[i] * b[i];
}
