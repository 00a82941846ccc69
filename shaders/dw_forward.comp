#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Depthwise forward: out[img][c][oh][ow] = sum_{r,s} w[c][r][s] * inp[img][c][oh*sh-pt+r*dh][ow*sw-pl+s*dw]
// (+ bias[c]; then the inference BatchNorm and / or ReLU epilogue, as the GEMM kernels).
// One invocation: DW_RUN consecutive outputs of one row, each weight loaded once for them.
layout(local_size_x = 64) in;
#include "common.glsl"
#include "dw_common.glsl"
layout(std430, binding = 0) writeonly buffer O { float o[]; };
layout(std430, binding = 1) readonly buffer I { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { float wt[]; };
layout(std430, binding = 3) readonly buffer B { float bias[]; };
void main() {
    int owb = (p.OW + DW_RUN - 1) / DW_RUN;
    uint t = vkr_flat_index();
    if (t >= uint(p.nb * p.C * p.OH * owb)) return;
    int img, c, oh, bx;
    dw_split(t, owb, p.OH, img, c, oh, bx);
    int ow0 = bx * DW_RUN;
    int ib = p.offI + (img * p.C + c) * p.H * p.W, wb = c * p.R * p.S;
    float acc[DW_RUN];
    [[unroll]] for (int j = 0; j < DW_RUN; j++) acc[j] = 0.0;
    bool reuse = p.sw == 1 && p.dw == 1 && p.S <= DW_MAXS; // uniform
    for (int r = 0; r < p.R; r++) {
        int ih = oh * p.sh - p.pt + r * p.dh;
        if (uint(ih) >= uint(p.H)) continue;
        int rb = ib + ih * p.W;
        if (reuse) { // the row's DW_RUN + S - 1 input columns, each loaded once
            int iw0 = ow0 - p.pl, span = DW_RUN + p.S - 1;
            float xs[DW_RUN + DW_MAXS - 1];
            [[unroll]] for (int k = 0; k < DW_RUN + DW_MAXS - 1; k++) {
                int iw = iw0 + k;
                xs[k] = (k < span && uint(iw) < uint(p.W)) ? x[rb + iw] : 0.0;
            }
            [[unroll]] for (int s = 0; s < DW_MAXS; s++) {
                if (s >= p.S) break;
                float wv = wt[wb + r * p.S + s];
                [[unroll]] for (int j = 0; j < DW_RUN; j++) acc[j] = fma(wv, xs[j + s], acc[j]);
            }
            continue;
        }
        for (int s = 0; s < p.S; s++) {
            float wv = wt[wb + r * p.S + s];
            int iw0 = ow0 * p.sw - p.pl + s * p.dw;
            [[unroll]] for (int j = 0; j < DW_RUN; j++) {
                int iw = iw0 + j * p.sw;
                if (uint(iw) < uint(p.W)) acc[j] = fma(wv, x[rb + iw], acc[j]);
            }
        }
    }
    float bv = (p.flags & 1) != 0 ? bias[c] : 0.0;
    int ob = p.offO + ((img * p.C + c) * p.OH + oh) * p.OW;
    [[unroll]] for (int j = 0; j < DW_RUN; j++) {
        if (ow0 + j >= p.OW) break;
        float v = acc[j] + bv;
        if ((p.flags & 4) != 0) v = (v - bias[p.C + c]) * bias[2 * p.C + c] + bias[3 * p.C + c];
        if ((p.flags & 2) != 0) v = v > 0.0 ? v : 0.0;
        o[ob + ow0 + j] = v;
    }
}
