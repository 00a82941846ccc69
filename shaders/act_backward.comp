#version 450
#extension GL_GOOGLE_include_directive : require
// dinp[i] = dout[i] * f'(inp[i]), inp the forward input (in-place safe: dinp may alias dout)
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
#include "act.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer I { float x[]; };
layout(push_constant) uniform P { uint n; uint mode; float a; float b; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float g = dout[i];
    dinp[i] = g * act_slope(p.mode, p.a, p.b, x[i]);
}
