#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Depthwise weight gradient: dw[c][r][s] (+)= sum over images and output pixels of
// dout[img][c][oh][ow] * inp[img][c][oh*sh-pt+r*dh][ow*sw-pl+s*dw].
// One workgroup per (channel, group of DW_TAPS taps): each invocation sums a contiguous run of the
// nb*OH*OW output positions (decomposed once, then stepped: no divisions in the loop), loading
// dout once per position for all the group's taps; the per-tap partials are folded by
// shared-memory trees (reduce.glsl; deterministic, no atomics).  flags bit 3: add to dw (later
// batch chunks).
// 64 invocations: a 256-wide tree costs more than the sums on small planes (14x14); at 56x56 64
// invocations still give each hundreds of positions
layout(local_size_x = 64) in;
#define RED_WG 64
#include "common.glsl"
#include "reduce.glsl"
#include "dw_common.glsl"
#define DW_TAPS 8
layout(std430, binding = 0) buffer DW { float dwt[]; };
layout(std430, binding = 1) readonly buffer DO { float dout[]; };
layout(std430, binding = 2) readonly buffer I { float x[]; };
void main() {
    int rs = p.R * p.S, ntg = (rs + DW_TAPS - 1) / DW_TAPS;
    int q = int(red_group_index());
    if (q >= p.C * ntg) return; // uniform over the workgroup
    int c = q / ntg, t0 = (q - c * ntg) * DW_TAPS;
    int oy[DW_TAPS], ox[DW_TAPS];
    [[unroll]] for (int k = 0; k < DW_TAPS; k++) {
        int tap = min(t0 + k, rs - 1), r = tap / p.S;
        oy[k] = t0 + k < rs ? r * p.dh - p.pt : -(1 << 28); // past the taps: never inside
        ox[k] = (tap - r * p.S) * p.dw - p.pl;
    }
    int total = p.nb * p.OH * p.OW, per = (total + RED_WG - 1) / RED_WG;
    int e0 = int(gl_LocalInvocationIndex) * per, e1 = min(e0 + per, total);
    int ohw = p.OH * p.OW, img = e0 / ohw, u = e0 - img * ohw, oh = u / p.OW, ow = u - oh * p.OW;
    float acc[DW_TAPS];
    [[unroll]] for (int k = 0; k < DW_TAPS; k++) acc[k] = 0.0;
    for (int e = e0; e < e1; e++) {
        int pc = img * p.C + c;
        float g = dout[p.offO + (pc * p.OH + oh) * p.OW + ow];
        int xb = p.offI + pc * p.H * p.W, y0 = oh * p.sh, x0 = ow * p.sw;
        [[unroll]] for (int k = 0; k < DW_TAPS; k++) {
            int iy = y0 + oy[k], ix = x0 + ox[k];
            if (uint(iy) < uint(p.H) && uint(ix) < uint(p.W)) acc[k] = fma(g, x[xb + iy * p.W + ix], acc[k]);
        }
        ow++;
        if (ow == p.OW) {
            ow = 0;
            oh++;
            if (oh == p.OH) {
                oh = 0;
                img++;
            }
        }
    }
    vec4 s0 = red_sum4(vec4(acc[0], acc[1], acc[2], acc[3]));
    vec4 s1 = red_sum4(vec4(acc[4], acc[5], acc[6], acc[7]));
    if (gl_LocalInvocationIndex == 0u) {
        [[unroll]] for (int k = 0; k < DW_TAPS; k++) {
            if (t0 + k >= rs) break;
            int i = c * rs + t0 + k;
            float v = k < 4 ? s0[k] : s1[k - 4];
            dwt[i] = (p.flags & 8) != 0 ? dwt[i] + v : v;
        }
    }
}
