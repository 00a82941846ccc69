#version 450
#extension GL_GOOGLE_include_directive : require
// Backward of out = a + b: da[i] = dout[i] (and db[i] = dout[i] with -DDUAL=1).
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer DA { float da[]; };
#if defined(DUAL) && DUAL
layout(std430, binding = 1) writeonly buffer DB { float db[]; };
layout(std430, binding = 2) readonly buffer DO { float dout[]; };
#else
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
#endif
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float g = dout[i];
    da[i] = g;
#if defined(DUAL) && DUAL
    db[i] = g;
#endif
}
