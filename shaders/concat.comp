#version 450
#extension GL_GOOGLE_include_directive : require
// Strided block copy for channel concat (forward and backward):
// dst[q*dst_plane + dst_off + j] = src[q*src_plane + src_off + j], j < len, per image q.
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
layout(std430, binding = 0) writeonly buffer D { float dst[]; };
layout(std430, binding = 1) readonly buffer S { float src[]; };
layout(push_constant) uniform P {
    uint total, len, dst_plane, dst_off, src_plane, src_off, base_dst, base_src;
} p;
void main() {
    uint i = vkr_flat_index();
    if (i >= p.total) return;
    uint q = i / p.len, j = i - q * p.len;
    dst[p.base_dst + q * p.dst_plane + p.dst_off + j] = src[p.base_src + q * p.src_plane + p.src_off + j];
}
