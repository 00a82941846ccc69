#version 450
#extension GL_GOOGLE_include_directive : require
// VKR_GEMM_TILED: conv2d / dense GEMM for real GPUs (see gemm_conv.glsl for the index maps).
// A BM x BN output tile per 16x16 workgroup, TM x TN outputs per invocation (register blocking:
// rows TM*ty.., columns TN*tx..; default 64x64 with 4x4, variants 128x64 with 8x4 and 128x128
// with 8x8 in variants.cmake); the A and B tiles (16 deep along the reduction) go through
// shared memory as vec4s, so each reduction step is (TM+TN)/4 128-bit shared loads and TM*TN FMAs.
// No divisions in the loads: every invocation loads a fixed column of B (decomposed once) and a
// fixed reduction slot of A; the reduction indices of a tile are decomposed once per tile into a
// small shared table (offsets into A and B, and the tap displacement for the padding test).
#include "gemm_conv.glsl"
// PREC_F16 (variants.cmake, the fp16 path of --precision fp16): the A and B tiles are rounded to
// float16 (round to nearest even) as they are stored into shared memory, which holds them as
// f16vec4 (half the shared memory and shared-load bandwidth); the products of the widened fp16
// values are exact in fp32 and every GEMM accumulates in fp32 (gemm_conv.glsl: GEMM_OPV).
// PREC_BF16 (--precision bf16): the tiles are rounded to bfloat16 as they are stored (kept as vec4).

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = 0) const int DIR = 0;
layout(constant_id = 1) const int SPLITK = 0; // 1: split-K partials (gemm_conv.glsl)

layout(std430, binding = 0) readonly buffer ABuf { float Av[]; };
layout(std430, binding = 1) readonly buffer BBuf { float Bv[]; };
layout(std430, binding = 2) buffer CBuf { float Cv[]; };
layout(std430, binding = 3) readonly buffer BiasBuf { float biasv[]; };

#ifndef TM
#define TM 4
#endif
#ifndef TN
#define TN 4
#endif
#define BM (16 * TM)
#define BN (16 * TN)
#define BK 16
#define BSTEP (256 / BN) // B slots between an invocation's loads

// As[k][g] = A(bm + 4g .. bm + 4g + 3, k0 + k), Bs[k][g] = B(k0 + k, bn + 4g .. bn + 4g + 3)
shared GEMM_OPV As[BK][BM / 4];
shared GEMM_OPV Bs[BK][BN / 4];
// per reduction slot of the tile: offset into A, offset into B, tap displacement (dy, dx); dy = -1 << 30 past the range
shared int kA[BK], kB[BK], kY[BK], kX[BK];

void main() {
    int tx = int(gl_LocalInvocationID.x), ty = int(gl_LocalInvocationID.y);
    int tid = ty * 16 + tx;
    GemmSplit sp = gemm_split(SPLITK != 0);
    int nblk = sp.xblk;
    int bn = nblk * BN, bm = int(gl_WorkGroupID.y) * BM;
    if (bn >= p.N) return; // uniform over the workgroup: all of it returns together
    int ohw = p.OH * p.OW, hw = p.H * p.W;

    // B loads: column nl = tid % BN (fixed), slots kb = tid / BN + BSTEP l
    int nl = tid % BN, kb0 = tid / BN;
    int n = min(bn + nl, p.N - 1);
    int bBase, bY, bX, bLimY, bLimX; // B(k, n) = Bv[bBase + kB[k]] if (bY + kY[k], bX + kX[k]) is inside
    if (DIR == DIR_FWD) {
        int img = n / ohw;
        int q = n - img * ohw;
        int oh = q / p.OW;
        bY = oh * p.sh - p.pt;
        bX = (q - oh * p.OW) * p.sw - p.pl;
        bBase = p.offB + img * p.C * hw + bY * p.W + bX;
        bLimY = p.H; bLimX = p.W;
    } else if (DIR == DIR_DGRAD) {
        int phw = p.hh * p.ww;
        int img = n / phw;
        int q = n - img * phw;
        int i = q / p.ww;
        bY = i + (p.ph + p.pt - p.r0 * p.dh) / p.sh;
        bX = q - i * p.ww + (p.pw + p.pl - p.s0 * p.dw) / p.sw;
        bBase = p.offB + img * p.K * ohw + bY * p.OW + bX;
        bLimY = p.OH; bLimX = p.OW;
    } else {
        int rs = p.R * p.S;
        int c = n / rs;
        int u = n - c * rs;
        int r = u / p.S;
        bY = r * p.dh - p.pt;
        bX = (u - r * p.S) * p.dw - p.pl;
        bBase = p.offB + c * hw + bY * p.W + bX;
        bLimY = p.H; bLimX = p.W;
    }
    // A loads: slot kl = tid % 16 (fixed), rows ml = tid / 16 + 16 l, l < BM / 16
    int kl = tid & 15, ml0 = tid >> 4;
    int aRow = DIR == DIR_FWD ? p.Kr : DIR == DIR_DGRAD ? p.R * p.S : ohw; // A(m, k) = Av[offA + m * aRow + kA[k]]

    float acc[TM][TN];
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0;

    for (int k0 = sp.kb; k0 < sp.ke; k0 += BK) {
        if (tid < BK) { // decompose the tile's reduction indices
            int k = k0 + tid;
            int oa = 0, ob = 0, dy = -(1 << 30), dx = 0;
            if (k < sp.ke) {
                if (DIR == DIR_FWD) { // (c, r, s)
                    int rs = p.R * p.S;
                    int c = k / rs;
                    int u = k - c * rs;
                    int r = u / p.S;
                    int s = u - r * p.S;
                    oa = k; ob = c * hw + r * p.dh * p.W + s * p.dw; dy = r * p.dh; dx = s * p.dw;
                } else if (DIR == DIR_DGRAD) { // (ko, tr, ts)
                    int t = p.rr * p.ss;
                    int ko = k / t;
                    int u = k - ko * t;
                    int tr = u / p.ss;
                    int ts = u - tr * p.ss;
                    ivec4 st = gemm_dgrad_steps();
                    oa = ko * p.C * p.R * p.S + (p.r0 + st.x * tr) * p.S + p.s0 + st.y * ts;
                    ob = ko * ohw - tr * st.z * p.OW - ts * st.w; dy = -tr * st.z; dx = -ts * st.w;
                } else { // (img, oh, ow)
                    int img = k / ohw;
                    int q = k - img * ohw;
                    int oh = q / p.OW;
                    int ow = q - oh * p.OW;
                    oa = img * p.K * ohw + q;
                    ob = img * p.C * hw + oh * p.sh * p.W + ow * p.sw; dy = oh * p.sh; dx = ow * p.sw;
                }
            }
            kA[tid] = oa; kB[tid] = ob; kY[tid] = dy; kX[tid] = dx;
        }
        barrier();
        bool kaok = kY[kl] != -(1 << 30);
        for (int l = 0; l < BM / 16; l++) {
            int ml = ml0 + 16 * l;
            int m = bm + ml;
            float va = 0.0;
            if (m < p.M && kaok) va = Av[p.offA + m * aRow + kA[kl]];
            As[kl][ml >> 2][ml & 3] = GEMM_OPS(va);
        }
        for (int l = 0; l < BK / BSTEP; l++) {
            int kb = kb0 + BSTEP * l;
            float vb = 0.0;
            if (bn + nl < p.N && uint(bY + kY[kb]) < uint(bLimY) && uint(bX + kX[kb]) < uint(bLimX))
                vb = Bv[bBase + kB[kb]];
            Bs[kb][nl >> 2][nl & 3] = GEMM_OPS(vb);
        }
        barrier();
        for (int kk = 0; kk < BK; kk++) {
            vec4 a[TM / 4], b[TN / 4];
            for (int q = 0; q < TM / 4; q++) a[q] = vec4(As[kk][ty * (TM / 4) + q]);
            for (int q = 0; q < TN / 4; q++) b[q] = vec4(Bs[kk][tx * (TN / 4) + q]);
            for (int i = 0; i < TM; i++)
                for (int j = 0; j < TN; j++) acc[i][j] = fma(a[i >> 2][i & 3], b[j >> 2][j & 3], acc[i][j]);
        }
        barrier();
    }

    bool relu = DIR == DIR_FWD && (p.hasBias & 2) != 0; // fused ReLU epilogue (after the bias)
    // BatchNorm epilogue (bit 2): planes 1..3 of the bias buffer hold mean, gamma/sqrt(var+eps), beta
    bool bnep = DIR == DIR_FWD && (p.hasBias & 4) != 0;
    for (int i = 0; i < TM; i++) {
        int m = bm + ty * TM + i;
        if (m >= p.M) continue;
        float bias = (p.hasBias & 1) != 0 ? biasv[gemm_bias_idx(0, m)] : 0.0;
        float bmean = 0.0, bgi = 1.0, bbeta = 0.0;
        if (bnep) {
            bmean = biasv[gemm_bias_idx(1, m)];
            bgi = biasv[gemm_bias_idx(2, m)];
            bbeta = biasv[gemm_bias_idx(3, m)];
        }
        for (int j = 0; j < TN; j++) {
            int nn = bn + tx * TN + j;
            if (nn >= p.N) continue;
            int ic = gemm_idx_c(DIR, m, nn) + sp.s * p.M * p.N;
            float v = acc[i][j] + bias;
            if (p.beta != 0) v += Cv[ic];
            if (bnep) v = (v - bmean) * bgi + bbeta;
            if (relu) v = v > 0.0 ? v : 0.0;
            Cv[ic] = v;
        }
    }
}
