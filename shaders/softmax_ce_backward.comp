#version 450
#extension GL_GOOGLE_include_directive : require
// dlogits[i] = (probs[i] - targets[i]) / batch   (element chunk of n floats)
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer D { float dl[]; };
layout(std430, binding = 1) readonly buffer Q { float pr[]; };
layout(std430, binding = 2) readonly buffer T { float tg[]; };
layout(push_constant) uniform P { uint n; float batch; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    dl[i] = (pr[i] - tg[i]) / p.batch;
}
