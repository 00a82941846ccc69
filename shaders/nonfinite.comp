#version 450
#extension GL_GOOGLE_include_directive : require
// flag |= 1 if any of x[0..n) is inf or NaN (runtime/ops/nonfinite.c): the gradient check of
// dynamic loss scaling.  One atomic per non-finite element; finite data writes nothing.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer F { uint flag[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float v = x[i];
    if (isnan(v) || isinf(v)) atomicOr(flag[0], 1u);
}
