#version 450
#extension GL_GOOGLE_include_directive : require
// out[q*HW + i] = a[q*HW + i] * b[q]: b [planes] broadcast over each plane of HW floats
// (squeeze-and-excitation); also the backward's da = dout * b.  One element per invocation.
layout(local_size_x = 256) in;
#include "common.glsl"
#include "reduce.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(push_constant) uniform P { uvec2 mg_hw; uint HW, planes, base_o, base_a, base_b; } pc;
void main() {
    uint i = vkr_flat_index();
    if (i >= pc.planes * pc.HW) return;
    uint q = red_udiv(i, pc.mg_hw);
    o[pc.base_o + i] = a[pc.base_a + i] * b[pc.base_b + q];
}
