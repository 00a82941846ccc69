#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Depthwise data gradient: dinp[img][c][ih][iw] = sum over the taps (r, s) whose output
// oh = (ih + pt - r*dh) / sh, ow = (iw + pl - s*dw) / sw is exact and inside: w[c][r][s] * dout[img][c][oh][ow].
// A gather (no atomics).  One invocation: DW_RUN input pixels of one row and one column phase
// ph = iw mod sw, iw = ph + sw*(jj0 + j): whether tap s reaches them depends on ph and s only
// ((ph + pl - s*dw) divisible by sw), and then their outputs ow = (ph + pl - s*dw)/sw + jj0 + j are
// consecutive.  Unit stride and dilation along W: the DW_RUN + S - 1 dout columns of a row are
// each loaded once.
layout(local_size_x = 64) in;
#include "common.glsl"
#include "dw_common.glsl"
layout(std430, binding = 0) writeonly buffer DI { float dinp[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer Wt { float wt[]; };

// v / d when d divides v (v may be negative, |v| < 2^20), else -(1 << 30): the quotient rounded
// from a float product, checked by multiplying back (an integer division by a push constant is a
// per-lane scalar loop on llvmpipe)
int exact_div(int v, int d, float inv) {
    int q = int(round(float(v) * inv));
    return q * d == v ? q : -(1 << 30);
}

void main() {
    int nj = (p.W + p.sw - 1) / p.sw, nblk = (nj + DW_RUN - 1) / DW_RUN;
    uint t = vkr_flat_index();
    if (t >= uint(p.nb * p.C * p.H * p.sw * nblk)) return;
    int img, c, ih, u;
    dw_split(t, p.sw * nblk, p.H, img, c, ih, u); // u = ph * nblk + bx
    int ph = int(floor((float(u) + 0.5) / float(nblk))), bx = u - ph * nblk; // u < sw * nblk: small
    if (bx < 0) ph--, bx += nblk;
    if (bx >= nblk) ph++, bx -= nblk;
    int jj0 = bx * DW_RUN;
    int db = p.offO + (img * p.C + c) * p.OH * p.OW, wb = c * p.R * p.S;
    float acc[DW_RUN];
    [[unroll]] for (int j = 0; j < DW_RUN; j++) acc[j] = 0.0;
    bool reuse = p.sw == 1 && p.dw == 1 && p.S <= DW_MAXS; // uniform
    float inv_sh = 1.0 / float(p.sh), inv_sw = 1.0 / float(p.sw);
    for (int r = 0; r < p.R; r++) {
        int oh = exact_div(ih + p.pt - r * p.dh, p.sh, inv_sh);
        if (uint(oh) >= uint(p.OH)) continue;
        int rb = db + oh * p.OW;
        if (reuse) { // ow = iw + pl - s: the DW_RUN + S - 1 columns from jj0 + pl - (S - 1), each loaded once
            int o0 = jj0 + p.pl - (p.S - 1), span = DW_RUN + p.S - 1;
            float ds[DW_RUN + DW_MAXS - 1];
            [[unroll]] for (int k = 0; k < DW_RUN + DW_MAXS - 1; k++) {
                int ow = o0 + k;
                ds[k] = (k < span && uint(ow) < uint(p.OW)) ? dout[rb + ow] : 0.0;
            }
            [[unroll]] for (int u = 0; u < DW_MAXS; u++) { // u = S - 1 - s: static indices into ds
                if (u >= p.S) break;
                float wv = wt[wb + r * p.S + p.S - 1 - u];
                [[unroll]] for (int j = 0; j < DW_RUN; j++) acc[j] = fma(wv, ds[j + u], acc[j]);
            }
            continue;
        }
        for (int s = 0; s < p.S; s++) {
            int q = exact_div(ph + p.pl - s * p.dw, p.sw, inv_sw);
            if (q == -(1 << 30)) continue; // tap s does not reach this phase
            float wv = wt[wb + r * p.S + s];
            int o0 = q + jj0;
            [[unroll]] for (int j = 0; j < DW_RUN; j++) {
                int ow = o0 + j;
                if (uint(ow) < uint(p.OW)) acc[j] = fma(wv, dout[rb + ow], acc[j]);
            }
        }
    }
    int ob = p.offI + ((img * p.C + c) * p.H + ih) * p.W;
    [[unroll]] for (int j = 0; j < DW_RUN; j++) {
        int iw = ph + p.sw * (jj0 + j);
        if (iw < p.W) dinp[ob + iw] = acc[j];
    }
}
