#version 450
#extension GL_GOOGLE_include_directive : require
// dlogits[i] = (probs[i] * sum_k targets[row, k] - targets[i]) / batch   (a chunk of whole rows,
// starting `base` floats into the bound ranges): the gradient of the batch-mean cross-entropy
// for any non-negative targets -- one-hot or smoothed rows sum to 1 (then it is exactly
// (probs - targets) / batch); rows scaled by a class weight w sum to w (the weighted loss).
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer D { float dl[]; };
layout(std430, binding = 1) readonly buffer Q { float pr[]; };
layout(std430, binding = 2) readonly buffer T { float tg[]; };
layout(push_constant) uniform P { uint n; float batch; uint classes; uint base; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    uint row = p.base + (i / p.classes) * p.classes, j = p.base + i;
    float st = 0.0;
    for (uint k = 0u; k < p.classes; k++) st += tg[row + k];
    dl[j] = (pr[j] * st - tg[j]) / p.batch;
}
