#version 450
#extension GL_GOOGLE_include_directive : require
// Max pool backward by gathering: dinp[y,x] = sum of dout over the windows
// covering (y,x) whose argmax is y*W+x.  Deterministic, no atomics.
// local size first: common.glsl reads gl_WorkGroupSize (glslang takes 1 before the declaration)
layout(local_size_x = 256) in;
#include "common.glsl"
#include "pool.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer A { int am[]; };
void main() {
    uint i = vkr_flat_index();
    if (i >= pp.total) return;
    uint hw = pp.H * pp.W;
    uint plane = i / hw, r = i - plane * hw;
    uint y = r / pp.W, x = r - y * pp.W;
    uint oy0, oy1, ox0, ox1;
    pool_covering(y, pp.KH, pp.SH, pp.PT, pp.OH, oy0, oy1);
    pool_covering(x, pp.KW, pp.SW, pp.PL, pp.OW, ox0, ox1);
    uint ob = plane * pp.OH * pp.OW;
    int me = int(r);
    float g = 0.0;
    for (uint oy = oy0; oy < oy1; oy++)
        for (uint ox = ox0; ox < ox1; ox++) {
            uint o = ob + oy * pp.OW + ox;
            if (am[pp.base2 + o] == me) g += dout[pp.base1 + o];
        }
    dinp[pp.base0 + i] = g;
}
