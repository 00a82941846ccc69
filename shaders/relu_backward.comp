#version 450
#extension GL_GOOGLE_include_directive : require
// dinp[i] = out[i] > 0 ? dout[i] : 0, with out the forward output
// (in-place safe: dinp may alias dout, each invocation reads then writes index i)
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float g = dout[i];
    dinp[i] = o[i] > 0.0 ? g : 0.0;
}
