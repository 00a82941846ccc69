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
// n / d when d divides n exactly (0 <= n < 2^22), else -1: the quotient rounded from a float
// product (an integer division is a per-lane scalar loop on llvmpipe), checked by multiplying back
int exact_div(int n, int d, float inv) {
    int q = int(round(float(n) * inv));
    return q * d == n && n >= 0 ? q : -1;
}

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
    bool reuse = p.sw == 1 && p.dw == 1 && p.S <= DW_MAXS; // uniform
    float inv_sh = 1.0 / float(p.sh), inv_sw = 1.0 / float(p.sw);
    for (int r = 0; r < p.R; r++) {
        int nh = ih + p.pt - r * p.dh;
        if (nh < 0) break; // r grows: nh only decreases
        int oh = exact_div(nh, p.sh, inv_sh);
        if (oh < 0 || oh >= p.OH) continue;
        int rb = db + oh * p.OW;
        if (reuse) { // ow = iw + pl - s: the DW_RUN + S - 1 columns from iw0 + pl - (S - 1), each loaded once
            int o0 = iw0 + p.pl - (p.S - 1), span = DW_RUN + p.S - 1;
            float ds[DW_RUN + DW_MAXS - 1];
            [[unroll]] for (int k = 0; k < DW_RUN + DW_MAXS - 1; k++) {
                int ow = o0 + k;
                ds[k] = (k < span && uint(ow) < uint(p.OW)) ? dout[rb + ow] : 0.0;
            }
            [[unroll]] for (int t = 0; t < DW_MAXS; t++) { // t = S - 1 - s: static indices into ds
                if (t >= p.S) break;
                float wv = wt[wb + r * p.S + p.S - 1 - t];
                [[unroll]] for (int j = 0; j < DW_RUN; j++) acc[j] = fma(wv, ds[j + t], acc[j]);
            }
            continue;
        }
        for (int s = 0; s < p.S; s++) {
            float wv = wt[wb + r * p.S + s];
            [[unroll]] for (int j = 0; j < DW_RUN; j++) {
                int ow = exact_div(iw0 + j + p.pl - s * p.dw, p.sw, inv_sw);
                if (uint(ow) < uint(p.OW)) acc[j] = fma(wv, dout[rb + ow], acc[j]);
            }
        }
    }
    int ob = p.offI + ((img * p.C + c) * p.H + ih) * p.W;
    [[unroll]] for (int j = 0; j < DW_RUN; j++) {
        if (iw0 + j >= p.W) break;
        dinp[ob + iw0 + j] = acc[j];
    }
}
