#version 450
#extension GL_GOOGLE_include_directive : require
// Depthwise weight gradient: dw[c][r][s] (+)= sum over images and output pixels of
// dout[img][c][oh][ow] * inp[img][c][oh*sh-pt+r*dh][ow*sw-pl+s*dw].  One workgroup per tap
// (c, r, s): strided per-invocation sums over the rows (img, oh) and their pixels, folded by a
// shared-memory tree (reduce.glsl; deterministic, no atomics).  flags bit 3: add to dw (later
// batch chunks).
layout(local_size_x = 256) in;
#include "common.glsl"
#include "reduce.glsl"
#include "dw_common.glsl"
layout(std430, binding = 0) buffer DW { float dwt[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer I { float x[]; };
void main() {
    int q = int(red_group_index());
    if (q >= p.C * p.R * p.S) return; // uniform over the workgroup
    int c = q / (p.R * p.S), u = q - c * p.R * p.S;
    int r = u / p.S, s = u - r * p.S;
    // the output columns whose input column is inside: ow in [ow_lo, ow_hi)
    int x0 = s * p.dw - p.pl; // iw = ow*sw + x0
    int ow_lo = x0 >= 0 ? 0 : (-x0 + p.sw - 1) / p.sw;
    int ow_hi = min(p.OW, (p.W - 1 - x0) / p.sw + 1);
    if (p.W - 1 - x0 < 0) ow_hi = 0;
    int nw = max(ow_hi - ow_lo, 0);
    int rows = p.nb * p.OH, total = rows * nw;
    float acc = 0.0;
    int t = int(gl_LocalInvocationIndex);
    // element e = row * nw + j, stepped by RED_WG without divisions in the loop
    int row = nw > 0 ? t / nw : rows, j = nw > 0 ? t - row * nw : 0;
    int step_r = nw > 0 ? RED_WG / nw : 0, step_j = nw > 0 ? RED_WG - step_r * nw : 0;
    for (int e = t; e < total; e += RED_WG) {
        int img = row / p.OH, oh = row - img * p.OH;
        int ih = oh * p.sh - p.pt + r * p.dh;
        if (uint(ih) < uint(p.H)) {
            int ow = ow_lo + j;
            acc = fma(dout[p.offO + ((img * p.C + c) * p.OH + oh) * p.OW + ow],
                      x[p.offI + ((img * p.C + c) * p.H + ih) * p.W + ow * p.sw + x0], acc);
        }
        row += step_r;
        j += step_j;
        if (j >= nw) {
            j -= nw;
            row += 1;
        }
    }
    acc = red_sum(acc);
    if (gl_LocalInvocationIndex == 0u) dwt[q] = (p.flags & 8) != 0 ? dwt[q] + acc : acc;
}
