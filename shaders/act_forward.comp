#version 450
#extension GL_GOOGLE_include_directive : require
// out[i] = f(inp[i]), f one of the activations of act.glsl (in-place safe: out may alias inp)
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
#include "act.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
layout(push_constant) uniform P { uint n; uint mode; float a; float b; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    o[i] = act_value(p.mode, p.a, p.b, x[i]);
}
