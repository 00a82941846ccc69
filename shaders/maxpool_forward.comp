#version 450
#extension GL_GOOGLE_include_directive : require
// Max pool: one invocation per output; argmax = y*W + x in the input plane.
// Padding never wins; ties: the first maximum in row-major window order wins.
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
#include "pool.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) writeonly buffer A { int am[]; };
layout(std430, binding = 2) readonly buffer I { float x[]; };
void main() {
    uint i = vkr_flat_index();
    if (i >= pp.total) return;
    uint ohw = pp.OH * pp.OW;
    uint plane = i / ohw, r = i - plane * ohw;
    uint oy = r / pp.OW, ox = r - oy * pp.OW;
    int y0, y1, x0, x1;
    pool_window(oy, pp.KH, pp.SH, pp.PT, pp.H, y0, y1);
    pool_window(ox, pp.KW, pp.SW, pp.PL, pp.W, x0, x1);
    uint ib = pp.base2 + plane * pp.H * pp.W;
    int arg = y0 * int(pp.W) + x0;
    float best = x[ib + uint(arg)];
    for (int y = y0; y < y1; y++) {
        uint row = ib + uint(y) * pp.W;
        for (int xx = x0; xx < x1; xx++) {
            float v = x[row + uint(xx)];
            if (v > best) {
                best = v;
                arg = y * int(pp.W) + xx;
            }
        }
    }
    o[pp.base0 + i] = best;
    am[pp.base1 + i] = arg;
}
