#version 450
#extension GL_GOOGLE_include_directive : require
// y[i] = a * x[i] + b * y[i]   (gradient accumulation, scaling, copies)
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform P { uint n; float a; float b; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    y[i] = p.b == 0.0 ? p.a * x[i] : p.a * x[i] + p.b * y[i];
}
