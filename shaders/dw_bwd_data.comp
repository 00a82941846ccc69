#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Depthwise data gradient: dinp[img][c][ih][iw] = sum over the taps (r, s) whose output
// oh = (ih + pt - r*dh) / sh, ow = (iw + pl - s*dw) / sw is exact and inside: w[c][r][s] * dout[img][c][oh][ow].
// A gather (no atomics): one invocation per DW_RUN consecutive input pixels of a row.
layout(local_size_x = 64) in;
#include "common.glsl"
#include "dw_common.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer Wt { float wt[]; };
void main() {
    int iwb = (p.W + DW_RUN - 1) / DW_RUN;
    int t = int(vkr_flat_index());
    if (t >= p.nb * p.C * p.H * iwb) return;
    int bx = t % iwb;
    t /= iwb;
    int ih = t % p.H;
    t /= p.H;
    int c = t % p.C, img = t / p.C;
    int iw0 = bx * DW_RUN;
    int db = p.offO + (img * p.C + c) * p.OH * p.OW, wb = c * p.R * p.S;
    float acc[DW_RUN];
    [[unroll]] for (int j = 0; j < DW_RUN; j++) acc[j] = 0.0;
    for (int r = 0; r < p.R; r++) {
        int nh = ih + p.pt - r * p.dh;
        if (nh < 0) break; // r grows: nh only decreases
        int oh = nh / p.sh;
        if (oh * p.sh != nh || oh >= p.OH) continue;
        int rb = db + oh * p.OW;
        for (int s = 0; s < p.S; s++) {
            float wv = wt[wb + r * p.S + s];
            [[unroll]] for (int j = 0; j < DW_RUN; j++) {
                int nw = iw0 + j + p.pl - s * p.dw;
                int ow = nw / p.sw;
                if (nw >= 0 && ow * p.sw == nw && ow < p.OW) acc[j] = fma(wv, dout[rb + ow], acc[j]);
            }
        }
    }
    int ob = p.offI + ((img * p.C + c) * p.H + ih) * p.W;
    [[unroll]] for (int j = 0; j < DW_RUN; j++) {
        if (iw0 + j >= p.W) break;
        dinp[ob + iw0 + j] = acc[j];
    }
}
