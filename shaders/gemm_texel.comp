#version 450
#extension GL_GOOGLE_include_directive : require
// VKR_GEMM_TEXEL: conv2d / dense GEMM for CPU devices (llvmpipe).  See gemm_conv.glsl for the
// index maps.  No shared memory, no barriers: the operands are read through uniform texel
// buffers (texelFetch is a branch-free vector gather on llvmpipe, much cheaper than storage
// loads), RGBA32F where the layout gives 4 consecutive values along the blocked dimension,
// R32F gathers otherwise; each invocation keeps TM x TN outputs in registers, so every
// fetched value feeds TN (A) or TM (B) FMAs.  Lanes along x share the rows of A.
//
// Operand modes (specialization constants, chosen by the host from the shape):
//   AMODE 0: A gathered (R32F)   1: A vec4 along k (RGBA32F)   2: A vec4 along m (RGBA32F)
//   BMODE 0: B gathered (R32F)   1: B vec4 along k (RGBA32F)   2: B vec4 along n (RGBA32F)
//   CMODE 0: scalar stores        1: vec4 stores along n         2: vec4 stores along m
// (a storage store costs a per-lane loop on llvmpipe, so 4 outputs per store matter when the
// reduction is short).
// PREC_F16 (variants.cmake, the fp16 path of --precision fp16): every operand value is rounded to
// float16 (round to nearest even; beyond 65504 it becomes inf) right after it is fetched, so the
// GEMM sees fp16 inputs; the products of fp16 values are exact in fp32 and the accumulation is fp32.
// PREC_BF16 (--precision bf16): the same with bfloat16 rounding (gemm_conv.glsl).
// A vec4 mode is chosen only when its rows/columns are whole, aligned texels; vec4 along k
// implies Kr % 4 == 0, vec4 along m (n) implies M % 4 == 0 (N % 4 == 0).
// The texel buffers are `textureBuffer`s read with texelFetch without a sampler
// (GL_EXT_samplerless_texture_functions): OpImageFetch on the image itself, the same uniform
// texel buffer descriptor.  A `samplerBuffer` would make an OpTypeSampledImage of Dim Buffer,
// which SPIR-V 1.6 forbids (the validator warns under the Vulkan 1.3+ environment, Mesa 25).
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_samplerless_texture_functions : require
#include "gemm_conv.glsl"

#ifndef TM
#define TM 16
#endif
#ifndef TN
#define TN 4
#endif

// The workgroup is LX x LY (spec constants 0 and 1); local_size_x/y give the same defaults,
// else glslang's default workgroup size for an unspecialized pipeline would be 1 x 1.
layout(local_size_x = 8, local_size_y = 8) in;
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const int LX = 8;
layout(constant_id = 1) const int LY = 8;
layout(constant_id = 2) const int DIR = 0;
layout(constant_id = 3) const int AMODE = 0;
layout(constant_id = 4) const int BMODE = 0;
layout(constant_id = 5) const int CMODE = 0;
layout(constant_id = 6) const int SWAP = 0; // 1: x runs over row blocks (few columns, e.g. dense at batch 1)
layout(constant_id = 7) const int SPLITK = 0; // 1: split-K partials (gemm_conv.glsl)

layout(binding = 0) uniform textureBuffer At;
layout(binding = 1) uniform textureBuffer Bt;
layout(std430, binding = 2) buffer CBuf { float Cv[]; };
layout(std430, binding = 4) buffer CBuf4 { vec4 Cv4[]; }; // the same range as binding 2, for CMODE 1 and 2
layout(binding = 3) uniform textureBuffer Biast;

int m0, n0;
vec4 a[TM]; // a[i][q] = A(m0+i, k0+q)
vec4 b[TN]; // b[j][q] = B(k0+q, n0+j)
int ab[TM]; // per-row base index of A
int bb[TN]; // per-column base index of B
int bih[TN], biw[TN]; // per-column gather origin (row, col) for B gathers
int cb[TN];           // per-column index of C(0, n); C(m, n) = cb + m * cstride
int cstride;
int ac0, ac1, ac2;    // reduction counters of A (uniform)
int KB, KE, SPL;      // this workgroup's reduction range [KB, KE) and split index (gemm_split)
ivec4 dstep;          // DGRAD tap steps and output decrements under dilation (gemm_dgrad_steps)
int bc0, bc1, bc2;    // reduction counters of B (uniform)

// ------------------------------------------------------------------ setup
void setup_a() {
    ac0 = 0; ac1 = 0; ac2 = 0;
    if (DIR == DIR_WGRAD && SPLITK != 0) { // (img, q) of the split's first reduction index
        ac0 = KB / (p.OH * p.OW);
        ac1 = KB - ac0 * p.OH * p.OW;
    }
    [[unroll]] for (int i = 0; i < TM; i++) {
        int m = min(m0 + i, p.M - 1);
        if (AMODE == 2) m = min(m0 + (i & ~3), p.M - 4); // vec4 groups of rows
        if (DIR == DIR_FWD) ab[i] = p.offA + m * p.Kr;           // weight row
        else if (DIR == DIR_DGRAD) ab[i] = p.offA + m * p.R * p.S; // weight[.][c]
        else ab[i] = p.offA + m * p.OH * p.OW;                   // dout[.][ko]
        if (AMODE == 2) ab[i] = p.offA + m; // DGRAD 1x1: weight[ko][c]; WGRAD dense: dout[img][ko]
    }
}

void setup_b() {
    bc0 = 0; bc1 = 0; bc2 = 0;
    int ohw = p.OH * p.OW, hw = p.H * p.W;
    if (DIR == DIR_WGRAD && SPLITK != 0) { // gather: (img, oh, ow); BMODE 1 (1x1, hw == ohw): (img, q)
        bc0 = KB / ohw;
        int q = KB - bc0 * ohw;
        bc1 = BMODE == 1 ? q : q / p.OW;
        bc2 = BMODE == 1 ? 0 : q - bc1 * p.OW;
    }
    // column n = (d0, d1, d2): FWD (img, oh, ow), DGRAD (img, i, j) of the phase, WGRAD (c, r, s);
    // decomposed once for n0, then stepped (no divisions per column)
    int r1 = DIR == DIR_FWD ? p.OH : DIR == DIR_DGRAD ? p.hh : p.R;
    int r2 = DIR == DIR_FWD ? p.OW : DIR == DIR_DGRAD ? p.ww : p.S;
    int t = n0 / r2;
    int d2 = n0 - t * r2;
    int d0 = t / r1;
    int d1 = t - d0 * r1;
    int cst = DIR == DIR_FWD ? ohw : DIR == DIR_DGRAD ? hw : p.N; // C row stride
    [[unroll]] for (int j = 0; j < TN; j++) {
        int n = n0 + j;
        if (DIR == DIR_FWD) {
            bih[j] = d1 * p.sh - p.pt;
            biw[j] = d2 * p.sw - p.pl;
            bb[j] = p.offB + d0 * p.C * hw + bih[j] * p.W + biw[j];
            if (BMODE == 1) bb[j] = p.offB + n * p.C;                    // dense: inp[n][c]
            if (BMODE == 2) bb[j] = p.offB + d0 * p.C * hw + d1 * p.W + d2; // 1x1: inp[img][c][q]
            cb[j] = p.offC + d0 * p.K * ohw + d1 * p.OW + d2;
        } else if (DIR == DIR_DGRAD) {
            bih[j] = d1 + (p.ph + p.pt - p.r0 * p.dh) / p.sh;
            biw[j] = d2 + (p.pw + p.pl - p.s0 * p.dw) / p.sw;
            bb[j] = p.offB + d0 * p.K * ohw + bih[j] * p.OW + biw[j];
            if (BMODE == 1) bb[j] = p.offB + n * p.K;                    // dense: dout[n][ko]
            if (BMODE == 2) bb[j] = p.offB + d0 * p.K * ohw + d1 * p.W + d2; // 1x1: dout[img][ko][q]
            cb[j] = p.offC + d0 * p.C * hw + (p.ph + p.sh * d1) * p.W + p.pw + p.sw * d2;
        } else {
            bih[j] = d1 * p.dh - p.pt;
            biw[j] = d2 * p.dw - p.pl;
            bb[j] = p.offB + d0 * hw + bih[j] * p.W + biw[j];
            if (BMODE == 1) bb[j] = p.offB + n * hw; // 1x1: inp[img][c][q]
            if (BMODE == 2) bb[j] = p.offB + n;      // dense: inp[img][c]
            cb[j] = p.offC + n + (SPLITK != 0 ? SPL * p.M * p.N : 0); // the split's partial
        }
        if (n >= p.N) { // past the end: read column 0 again (in range), never stored
            bih[j] = bih[0]; biw[j] = biw[0]; bb[j] = bb[0];
        }
        d2 += 1;
        bool w = d2 == r2;
        d2 = w ? 0 : d2;
        d1 += w ? 1 : 0;
        w = d1 == r1;
        d1 = w ? 0 : d1;
        d0 += w ? 1 : 0;
    }
    cstride = cst;
}

// ------------------------------------------------------------------ loads of one 4-step
float fetch_r(textureBuffer t, bool ok, int idx) {
    float v = texelFetch(t, ok ? idx : 0).x;
    return ok ? v : 0.0;
}

void load_a(int k0) {
    if (AMODE == 1) {
        // vec4 along k: FWD weight rows (Kr % 4 == 0); WGRAD dout rows (OH*OW % 4 == 0)
        int u = DIR == DIR_FWD ? k0 : ac0 * p.K * p.OH * p.OW + ac1;
        [[unroll]] for (int i = 0; i < TM; i++) a[i] = texelFetch(At, (ab[i] + u) >> 2);
        if (DIR == DIR_WGRAD) { // (img, q) += 4
            ac1 += 4;
            bool w = ac1 == p.OH * p.OW;
            ac1 = w ? 0 : ac1;
            ac0 += w ? 1 : 0;
        }
    } else if (AMODE == 2) {
        // vec4 along m: A(m..m+3, k) at ab + k*M  (DGRAD 1x1: weight[ko][c]; WGRAD dense: dout[img][ko])
        [[unroll]] for (int q = 0; q < 4; q++) {
            int k = k0 + q;
            bool ok = k < KE;
            int kc = ok ? k : 0;
            [[unroll]] for (int g = 0; g < TM; g += 4) {
                vec4 v = texelFetch(At, (ab[g] + kc * p.M) >> 2);
                v = ok ? v : vec4(0.0);
                a[g][q] = v.x; a[g + 1][q] = v.y; a[g + 2][q] = v.z; a[g + 3][q] = v.w;
            }
        }
    } else {
        [[unroll]] for (int q = 0; q < 4; q++) {
            int k = k0 + q;
            bool ok = k < KE;
            int u;
            if (DIR == DIR_FWD) {
                u = k;
            } else if (DIR == DIR_DGRAD) { // (ko, tr, ts)
                u = ac0 * p.C * p.R * p.S + (p.r0 + dstep.x * ac1) * p.S + p.s0 + dstep.y * ac2;
                ac2 += 1;
                bool w = ac2 == p.ss;
                ac2 = w ? 0 : ac2;
                ac1 += w ? 1 : 0;
                w = ac1 == p.rr;
                ac1 = w ? 0 : ac1;
                ac0 += w ? 1 : 0;
            } else { // (img, q)
                u = ac0 * p.K * p.OH * p.OW + ac1;
                ac1 += 1;
                bool w = ac1 == p.OH * p.OW;
                ac1 = w ? 0 : ac1;
                ac0 += w ? 1 : 0;
            }
            [[unroll]] for (int i = 0; i < TM; i++) a[i][q] = fetch_r(At, ok, ab[i] + u);
        }
    }
}

void load_b(int k0) {
    if (BMODE == 1) {
        // vec4 along k: FWD/DGRAD dense rows (C or K % 4 == 0); WGRAD 1x1 image planes (HW % 4 == 0)
        int u = DIR == DIR_WGRAD ? bc0 * p.C * p.H * p.W + bc1 : k0;
        [[unroll]] for (int j = 0; j < TN; j++) b[j] = texelFetch(Bt, (bb[j] + u) >> 2);
        if (DIR == DIR_WGRAD) {
            bc1 += 4;
            bool w = bc1 == p.H * p.W;
            bc1 = w ? 0 : bc1;
            bc0 += w ? 1 : 0;
        }
    } else if (BMODE == 2) {
        // vec4 along n: B(k, n..n+3) at bb + k*ld
        int ld = DIR == DIR_FWD ? p.H * p.W : DIR == DIR_DGRAD ? p.OH * p.OW : p.C;
        [[unroll]] for (int q = 0; q < 4; q++) {
            int k = k0 + q;
            bool ok = k < KE;
            int kc = ok ? k : 0;
            [[unroll]] for (int g = 0; g < TN; g += 4) {
                vec4 v = texelFetch(Bt, (bb[g] + kc * ld) >> 2);
                v = ok ? v : vec4(0.0);
                b[g][q] = v.x; b[g + 1][q] = v.y; b[g + 2][q] = v.z; b[g + 3][q] = v.w;
            }
        }
    } else {
        [[unroll]] for (int q = 0; q < 4; q++) {
            int k = k0 + q;
            bool kok = k < KE;
            int u, dy, dx, lim_y, lim_x;
            if (DIR == DIR_FWD) { // counters (c, r, s)
                dy = bc1 * p.dh; dx = bc2 * p.dw; lim_y = p.H; lim_x = p.W;
                u = bc0 * p.H * p.W + dy * p.W + dx;
                bc2 += 1;
                bool w = bc2 == p.S;
                bc2 = w ? 0 : bc2;
                bc1 += w ? 1 : 0;
                w = bc1 == p.R;
                bc1 = w ? 0 : bc1;
                bc0 += w ? 1 : 0;
            } else if (DIR == DIR_DGRAD) { // counters (ko, tr, ts)
                dy = -bc1 * dstep.z; dx = -bc2 * dstep.w; lim_y = p.OH; lim_x = p.OW;
                u = bc0 * p.OH * p.OW + dy * p.OW + dx;
                bc2 += 1;
                bool w = bc2 == p.ss;
                bc2 = w ? 0 : bc2;
                bc1 += w ? 1 : 0;
                w = bc1 == p.rr;
                bc1 = w ? 0 : bc1;
                bc0 += w ? 1 : 0;
            } else { // counters (img, oh, ow)
                int y = bc1 * p.sh, x = bc2 * p.sw;
                u = bc0 * p.C * p.H * p.W + y * p.W + x;
                dy = y; dx = x; lim_y = p.H; lim_x = p.W;
                bc2 += 1;
                bool w = bc2 == p.OW;
                bc2 = w ? 0 : bc2;
                bc1 += w ? 1 : 0;
                w = bc1 == p.OH;
                bc1 = w ? 0 : bc1;
                bc0 += w ? 1 : 0;
            }
            [[unroll]] for (int j = 0; j < TN; j++) {
                bool ok = kok && uint(bih[j] + dy) < uint(lim_y) && uint(biw[j] + dx) < uint(lim_x);
                b[j][q] = fetch_r(Bt, ok, bb[j] + u);
            }
        }
    }
}

// Inference BatchNorm in the epilogue (hasBias bit 2): planes 1..3 of the bias binding hold
// mean, gamma / sqrt(var + eps) and beta per output channel (plane 0 the conv bias).
vec3 bn_at(int m) {
    return vec3(texelFetch(Biast, gemm_bias_idx(1, m)).x, texelFetch(Biast, gemm_bias_idx(2, m)).x,
                texelFetch(Biast, gemm_bias_idx(3, m)).x);
}

void main() {
    GemmSplit sp = gemm_split(SPLITK != 0);
    KB = sp.kb; KE = sp.ke; SPL = sp.s;
    dstep = DIR == DIR_DGRAD ? gemm_dgrad_steps() : ivec4(1);
    int xblk = sp.xblk * LX + int(gl_LocalInvocationID.x);
    int yblk = int(gl_GlobalInvocationID.y);
    n0 = (SWAP != 0 ? yblk : xblk) * TN;
    m0 = (SWAP != 0 ? xblk : yblk) * TM;
    if (n0 >= p.N || m0 >= p.M) return;
    setup_a();
    setup_b();
    float acc[TM * TN];
    [[unroll]] for (int i = 0; i < TM * TN; i++) acc[i] = 0.0;
    for (int k0 = KB; k0 < KE; k0 += 4) {
        load_a(k0);
        load_b(k0);
#if defined(PREC_F16) || defined(PREC_BF16)
        [[unroll]] for (int i = 0; i < TM; i++) a[i] = gemm_round_op(a[i]);
        [[unroll]] for (int j = 0; j < TN; j++) b[j] = gemm_round_op(b[j]);
#endif
        [[unroll]] for (int i = 0; i < TM; i++)
            [[unroll]] for (int j = 0; j < TN; j++) {
                float c = acc[i * TN + j];
                c = fma(a[i].x, b[j].x, c);
                c = fma(a[i].y, b[j].y, c);
                c = fma(a[i].z, b[j].z, c);
                c = fma(a[i].w, b[j].w, c);
                acc[i * TN + j] = c;
            }
    }
    bool accumulate = DIR == DIR_WGRAD && p.beta != 0;
    bool relu = DIR == DIR_FWD && (p.hasBias & 2) != 0; // fused ReLU epilogue (after the bias)
    bool bnep = DIR == DIR_FWD && (p.hasBias & 4) != 0; // BatchNorm epilogue (after the bias, before the ReLU)
    if (CMODE == 1) { // C(m, n..n+3) contiguous (N % 4 == 0, 4-aligned)
        [[unroll]] for (int i = 0; i < TM; i++) {
            int m = m0 + i;
            if (m >= p.M) break;
            float bias = (p.hasBias & 1) != 0 ? texelFetch(Biast, gemm_bias_idx(0, m)).x : 0.0;
            vec3 bn = bnep ? bn_at(m) : vec3(0.0, 1.0, 0.0);
            [[unroll]] for (int g = 0; g < TN; g += 4) {
                if (n0 + g >= p.N) break;
                int ic = (cb[g] + m * cstride) >> 2;
                vec4 v = vec4(acc[i * TN + g], acc[i * TN + g + 1], acc[i * TN + g + 2], acc[i * TN + g + 3]) + bias;
                if (accumulate) v += Cv4[ic];
                if (bnep) v = (v - bn.x) * bn.y + bn.z;
                if (relu) v = mix(vec4(0.0), v, greaterThan(v, vec4(0.0)));
                Cv4[ic] = v;
            }
        }
    } else if (CMODE == 2) { // C(m..m+3, n) contiguous (cstride 1, M % 4 == 0, 4-aligned)
        [[unroll]] for (int i = 0; i < TM; i += 4) {
            int m = m0 + i;
            if (m >= p.M) break;
            vec4 bias = vec4(0.0);
            if ((p.hasBias & 1) != 0)
                bias = vec4(texelFetch(Biast, gemm_bias_idx(0, m)).x, texelFetch(Biast, gemm_bias_idx(0, m + 1)).x,
                            texelFetch(Biast, gemm_bias_idx(0, m + 2)).x, texelFetch(Biast, gemm_bias_idx(0, m + 3)).x);
            vec4 bm = vec4(0.0), bg = vec4(1.0), bt = vec4(0.0);
            if (bnep)
                [[unroll]] for (int q = 0; q < 4; q++) {
                    vec3 t = bn_at(m + q);
                    bm[q] = t.x; bg[q] = t.y; bt[q] = t.z;
                }
            [[unroll]] for (int j = 0; j < TN; j++) {
                if (n0 + j >= p.N) break;
                int ic = (cb[j] + m) >> 2;
                vec4 v = vec4(acc[i * TN + j], acc[(i + 1) * TN + j], acc[(i + 2) * TN + j], acc[(i + 3) * TN + j]) + bias;
                if (accumulate) v += Cv4[ic];
                if (bnep) v = (v - bm) * bg + bt;
                if (relu) v = mix(vec4(0.0), v, greaterThan(v, vec4(0.0)));
                Cv4[ic] = v;
            }
        }
    } else {
        [[unroll]] for (int i = 0; i < TM; i++) {
            int m = m0 + i;
            if (m >= p.M) break;
            float bias = (p.hasBias & 1) != 0 ? texelFetch(Biast, gemm_bias_idx(0, m)).x : 0.0;
            vec3 bn = bnep ? bn_at(m) : vec3(0.0, 1.0, 0.0);
            [[unroll]] for (int j = 0; j < TN; j++) {
                if (n0 + j >= p.N) break;
                int ic = cb[j] + m * cstride;
                float v = acc[i * TN + j] + bias;
                if (accumulate) v += Cv[ic];
                if (bnep) v = (v - bn.x) * bn.y + bn.z;
                if (relu) v = v > 0.0 ? v : 0.0;
                Cv[ic] = v;
            }
        }
    }
}
