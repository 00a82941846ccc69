#version 450
#extension GL_GOOGLE_include_directive : require
// Average pool backward by gathering: dinp[y,x] = sum over the windows covering
// (y,x) of dout / divisor(window).  Deterministic, no atomics.
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
#include "pool.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
void main() {
    uint i = vkr_flat_index();
    if (i >= pp.total) return;
    uint hw = pp.H * pp.W;
    uint plane = i / hw, r = i - plane * hw;
    uint y = r / pp.W, x = r - y * pp.W;
    uint oy0, oy1, ox0, ox1;
    pool_covering(y, pp.KH, pp.SH, pp.PT, pp.OH, oy0, oy1);
    pool_covering(x, pp.KW, pp.SW, pp.PL, pp.OW, ox0, ox1);
    uint ob = pp.base1 + plane * pp.OH * pp.OW;
    float g = 0.0;
    for (uint oy = oy0; oy < oy1; oy++) {
        int a0, a1;
        pool_window(oy, pp.KH, pp.SH, pp.PT, pp.H, a0, a1);
        float gy = 0.0;
        for (uint ox = ox0; ox < ox1; ox++) {
            float d = dout[ob + oy * pp.OW + ox];
            if (pp.include_pad == 0u) {
                int b0, b1;
                pool_window(ox, pp.KW, pp.SW, pp.PL, pp.W, b0, b1);
                d /= float(b1 - b0);
            } else if (pp.include_pad == 2u) {
                d /= float(pool_span(ox, pp.KW, pp.SW, pp.PL, pp.EW));
            }
            gy += d;
        }
        if (pp.include_pad == 2u) a1 = a0 + pool_span(oy, pp.KH, pp.SH, pp.PT, pp.EH);
        g += pp.include_pad == 1u ? gy : gy / float(a1 - a0);
    }
    if (pp.include_pad == 1u) g /= float(pp.KH * pp.KW);
    dinp[pp.base0 + i] = g;
}
