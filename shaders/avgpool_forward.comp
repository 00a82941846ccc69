#version 450
#extension GL_GOOGLE_include_directive : require
// Average pool: one invocation per output.  Divisor KH*KW (include_pad = 1)
// or the number of valid input positions in the window (include_pad = 0).
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
#include "pool.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
void main() {
    uint i = vkr_flat_index();
    if (i >= pp.total) return;
    uint ohw = pp.OH * pp.OW;
    uint plane = i / ohw, r = i - plane * ohw;
    uint oy = r / pp.OW, ox = r - oy * pp.OW;
    int y0, y1, x0, x1;
    pool_window(oy, pp.KH, pp.SH, pp.PT, pp.H, y0, y1);
    pool_window(ox, pp.KW, pp.SW, pp.PL, pp.W, x0, x1);
    uint ib = pp.base1 + plane * pp.H * pp.W;
    float s = 0.0;
    for (int y = y0; y < y1; y++) {
        uint row = ib + uint(y) * pp.W;
        for (int xx = x0; xx < x1; xx++) s += x[row + uint(xx)];
    }
    float cnt = pp.include_pad == 1u ? float(pp.KH * pp.KW) : float((y1 - y0) * (x1 - x0));
    if (pp.include_pad == 2u)
        cnt = float(pool_span(oy, pp.KH, pp.SH, pp.PT, pp.EH) * pool_span(ox, pp.KW, pp.SW, pp.PL, pp.EW));
    o[pp.base0 + i] = s / cnt;
}
