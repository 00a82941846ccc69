#version 450
#extension GL_GOOGLE_include_directive : require
// Keras Adam on an element chunk of n floats (runtime/ops/adam.c; lr_t is the
// bias-corrected rate lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed on the host):
//   g += l2 * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr_t * m / (sqrt(v) + eps);  decoupled weight decay: p -= lr_wd * p_old
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer W { float param[]; };
layout(std430, binding = 1) readonly buffer G { float grad[]; };
layout(std430, binding = 2) buffer M { float mom[]; };
layout(std430, binding = 3) buffer V { float var[]; };
layout(push_constant) uniform P { uint n; float lr_t; float b1; float b2; float eps; float l2; float lr_wd; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float w = param[i];
    float g = grad[i];
    if (p.l2 != 0.0) g += p.l2 * w;
    float m = p.b1 * mom[i] + (1.0 - p.b1) * g;
    float v = p.b2 * var[i] + (1.0 - p.b2) * (g * g);
    mom[i] = m;
    var[i] = v;
    float wn = w - p.lr_t * m / (sqrt(v) + p.eps);
    if (p.lr_wd != 0.0) wn -= p.lr_wd * w;
    param[i] = wn;
}
