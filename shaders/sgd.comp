#version 450
#extension GL_GOOGLE_include_directive : require
// Keras SGD on an element chunk of n floats (runtime/ops/sgd.c):
//   g += l2 * p;  v = momentum * v - lr * g;  p += v  (nesterov: p += momentum * v - lr * g)
//   decoupled weight decay: p -= lr_wd * p_old  (lr_wd = lr * weight_decay)
// PLAIN (variant sgd_plain): no velocity binding, p -= lr * g.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer W { float param[]; };
layout(std430, binding = 1) readonly buffer G { float grad[]; };
#ifndef PLAIN
layout(std430, binding = 2) buffer V { float vel[]; };
#endif
layout(push_constant) uniform P { uint n; float lr; float momentum; float l2; float lr_wd; uint nesterov; } p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.n) return;
    float w = param[i];
    float g = grad[i];
    if (p.l2 != 0.0) g += p.l2 * w;
#ifdef PLAIN
    float upd = -(p.lr * g);
#else
    float v = p.momentum * vel[i] - p.lr * g;
    vel[i] = v;
    float upd = p.nesterov != 0u ? p.momentum * v - p.lr * g : v;
#endif
    float wn = w + upd;
    if (p.lr_wd != 0.0) wn -= p.lr_wd * w;
    param[i] = wn;
}
