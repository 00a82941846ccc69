/* The split BatchNorm training passes of synchronized BatchNorm (--sync-bn, runtime/ops/batchnorm.c:
 * vkr_batchnorm_train_stats / _finish / _running, _bwd_sums / _bwd_dinp): a batch cut in two parts
 * (2 + 3 images), each part's statistics pass, the parts' (count, mean, M2) combined on the host with
 * Chan's formula in double (as runtime/train/fit_dp.c does over the ranks), each part finished with
 * the whole batch's count; backward: each part's sums, their total given to each part's dinp pass.
 * The concatenated outputs, saved mean / invstd, running statistics (each part's copy, and a copy
 * updated by _running alone, as a rank without images does), input gradients and the parts' summed
 * dgamma / dbeta must equal vkr_batchnorm_train_forward / _backward on the whole batch (1e-5
 * relative to the largest magnitude).  Run with the default paths and with small chunks and blocks
 * forced (several chunks per part, block partials).  Bad counts are refused.  Prints PASS/FAIL lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_rng.h"
#include "test_util.h"
#include "vkrun_ops.h"

void vkr__bn_test_overrides(uint64_t chunk_floats, int path, uint32_t block); /* runtime/ops/batchnorm.c */

#define TOL 1e-5

static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

typedef struct {
    vkr_context *ctx;
    vkr_status s;
    vkr_buffer *bufs[64];
    int nb;
} arena;

static vkr_buffer *buf(arena *A, const float *data, size_t n) {
    vkr_buffer *b = NULL;
    if (A->s) return NULL;
    A->s = data ? vkr_buffer_from_floats(A->ctx, data, n, &b) : vkr_buffer_create(A->ctx, n * 4, &b);
    if (!A->s) A->bufs[A->nb++] = b;
    return b;
}

static void get(arena *A, vkr_buffer *b, float *out, size_t n) {
    if (!A->s) A->s = vkr_buffer_download(b, 0, out, n * 4);
}

static void put(arena *A, vkr_buffer *b, const float *in, size_t n) {
    if (!A->s) A->s = vkr_buffer_upload(b, 0, in, n * 4);
}

/* Records what rec does into a fresh stream and runs it. */
#define RUN(A, call)                                                                                                   \
    do {                                                                                                               \
        vkr_cmd *c_ = NULL;                                                                                            \
        if (!(A)->s) (A)->s = vkr_cmd_begin((A)->ctx, &c_);                                                            \
        if (!(A)->s) (A)->s = (call);                                                                                  \
        if (!(A)->s) (A)->s = vkr_cmd_submit(c_);                                                                      \
        if (c_) vkr_cmd_free(c_);                                                                                      \
    } while (0)
#define cmd c_

enum { N = 5, C = 4, H = 3, W = 5, HW = H * W, S = C * HW };
static const int part_n[2] = {2, 3};

static void check(vkr_context *ctx, uint64_t chunk, uint32_t block, const char *what) {
    arena A = {.ctx = ctx};
    static float x[N * S], dy[N * S], gam[C], bet[C], rm0[C], rv0[C];
    for (int i = 0; i < N * S; i++) x[i] = (float)(1.5 * ((i / HW) % C) + 2 * urand() - 1), dy[i] = (float)(urand() - 0.5);
    for (int c = 0; c < C; c++) gam[c] = (float)(0.5 + urand()), bet[c] = (float)(urand() - 0.5), rm0[c] = 0.1f * c, rv0[c] = 1;
    vkr_bn_shape p = {N, C, H, W, 1e-3f, 0.9f, 1};
    /* the whole batch (default path) */
    vkr__bn_test_overrides(0, 0, 0);
    vkr_buffer *X = buf(&A, x, N * S), *DY = buf(&A, dy, N * S), *G = buf(&A, gam, C), *B = buf(&A, bet, C);
    vkr_buffer *O = buf(&A, NULL, N * S), *M = buf(&A, NULL, C), *I = buf(&A, NULL, C), *RM = buf(&A, rm0, C);
    vkr_buffer *RV = buf(&A, rv0, C), *DX = buf(&A, NULL, N * S), *DG = buf(&A, NULL, C), *DB = buf(&A, NULL, C);
    RUN(&A, vkr_batchnorm_train_forward(cmd, &p, O, M, I, X, G, B, RM, RV));
    RUN(&A, vkr_batchnorm_train_backward(cmd, &p, DX, DG, DB, DY, X, G, M, I));
    static float ro[N * S], rdx[N * S], rmean[C], rinv[C], rrm[C], rrv[C], rdg[C], rdb[C];
    get(&A, O, ro, N * S), get(&A, DX, rdx, N * S), get(&A, M, rmean, C), get(&A, I, rinv, C);
    get(&A, RM, rrm, C), get(&A, RV, rrv, C), get(&A, DG, rdg, C), get(&A, DB, rdb, C);
    /* the two parts */
    vkr__bn_test_overrides(chunk, chunk ? 2 : 0, block);
    vkr_buffer *px[2], *pdy[2], *po[2], *pm[2], *pi[2], *prm[2], *prv[2], *pdx[2], *ps1[2], *ps2[2], *t1, *t2;
    double cnt[2], mean[2][C], m2[2][C];
    int off = 0;
    for (int h = 0; h < 2; h++) {
        vkr_bn_shape q = p;
        q.n = part_n[h];
        px[h] = buf(&A, x + off * S, (size_t)q.n * S), pdy[h] = buf(&A, dy + off * S, (size_t)q.n * S);
        po[h] = buf(&A, NULL, (size_t)q.n * S), pdx[h] = buf(&A, NULL, (size_t)q.n * S);
        pm[h] = buf(&A, NULL, C), pi[h] = buf(&A, NULL, C), prm[h] = buf(&A, rm0, C), prv[h] = buf(&A, rv0, C);
        ps1[h] = buf(&A, NULL, C), ps2[h] = buf(&A, NULL, C);
        RUN(&A, vkr_batchnorm_train_stats(cmd, &q, po[h], pm[h], pi[h], px[h]));
        float fm[C], f2[C];
        get(&A, pm[h], fm, C), get(&A, pi[h], f2, C);
        for (int c = 0; c < C; c++) mean[h][c] = fm[c], m2[h][c] = f2[c];
        cnt[h] = (double)q.n * HW;
        off += q.n;
    }
    float gm[C], g2[C];
    for (int c = 0; c < C; c++) { /* Chan's formula, part 0 then part 1 */
        double n = cnt[0] + cnt[1], d = mean[1][c] - mean[0][c];
        gm[c] = (float)(mean[0][c] + d * cnt[1] / n);
        g2[c] = (float)(m2[0][c] + m2[1][c] + d * d * cnt[0] * cnt[1] / n);
    }
    double total = cnt[0] + cnt[1];
    static float got_o[N * S], got_dx[N * S];
    float gmean[2][C], ginv[2][C], grm[2][C], grv[2][C], s1[2][C], s2[2][C], s1g[C], s2g[C];
    off = 0;
    for (int h = 0; h < 2; h++) {
        vkr_bn_shape q = p;
        q.n = part_n[h];
        put(&A, pm[h], gm, C), put(&A, pi[h], g2, C);
        RUN(&A, vkr_batchnorm_train_finish(cmd, &q, total, po[h], pm[h], pi[h], px[h], G, B, prm[h], prv[h]));
        get(&A, po[h], got_o + off * S, (size_t)q.n * S);
        get(&A, pm[h], gmean[h], C), get(&A, pi[h], ginv[h], C), get(&A, prm[h], grm[h], C), get(&A, prv[h], grv[h], C);
        RUN(&A, vkr_batchnorm_train_bwd_sums(cmd, &q, pdx[h], ps1[h], ps2[h], pdy[h], px[h], pm[h], pi[h]));
        get(&A, ps1[h], s1[h], C), get(&A, ps2[h], s2[h], C);
        off += q.n;
    }
    for (int c = 0; c < C; c++) s1g[c] = s1[0][c] + s1[1][c], s2g[c] = s2[0][c] + s2[1][c];
    t1 = buf(&A, s1g, C), t2 = buf(&A, s2g, C);
    off = 0;
    for (int h = 0; h < 2; h++) {
        vkr_bn_shape q = p;
        q.n = part_n[h];
        RUN(&A, vkr_batchnorm_train_bwd_dinp(cmd, &q, total, pdx[h], pdy[h], px[h], G, pm[h], pi[h], t1, t2));
        get(&A, pdx[h], got_dx + off * S, (size_t)q.n * S);
        off += q.n;
    }
    /* a rank without images: the running statistics from the global (mean, M2) alone */
    float orm[C], orv[C];
    vkr_buffer *om = buf(&A, gm, C), *oi = buf(&A, g2, C), *orb = buf(&A, rm0, C), *ovb = buf(&A, rv0, C);
    vkr_bn_shape one = p;
    one.n = 1;
    RUN(&A, vkr_batchnorm_train_running(cmd, &one, total, om, oi, orb, ovb));
    get(&A, orb, orm, C), get(&A, ovb, orv, C);
    vkr__bn_test_overrides(0, 0, 0);
    CHECK_OK(A.s, "%s: whole batch and two parts run", what);
    if (!A.s) {
        double e[8] = {rel_err(got_o, ro, N * S), 0, 0, 0, rel_err(got_dx, rdx, N * S), 0, 0, 0};
        for (int h = 0; h < 2; h++) {
            e[1] = fmax(e[1], fmax(rel_err(gmean[h], rmean, C), rel_err(ginv[h], rinv, C)));
            e[2] = fmax(e[2], fmax(rel_err(grm[h], rrm, C), rel_err(grv[h], rrv, C)));
        }
        e[3] = fmax(rel_err(orm, rrm, C), rel_err(orv, rrv, C));
        e[5] = fmax(rel_err(s2g, rdg, C), rel_err(s1g, rdb, C));
        CHECK(e[0] <= TOL, "%s: forward output of the parts = whole batch (%.1e)", what, e[0]);
        CHECK(e[1] <= TOL, "%s: saved mean, invstd = whole batch (%.1e)", what, e[1]);
        CHECK(e[2] <= TOL, "%s: running mean, var of each part = whole batch (%.1e)", what, e[2]);
        CHECK(e[3] <= TOL, "%s: running statistics by train_running alone = whole batch (%.1e)", what, e[3]);
        CHECK(e[4] <= TOL, "%s: input gradient of the parts = whole batch (%.1e)", what, e[4]);
        CHECK(e[5] <= TOL, "%s: summed dgamma, dbeta of the parts = whole batch (%.1e)", what, e[5]);
        /* the check can fail: the parts finished with their own counts differ */
        vkr_bn_shape q = p;
        q.n = part_n[0];
        float bad[2 * S];
        put(&A, pm[0], gm, C), put(&A, pi[0], g2, C);
        RUN(&A, vkr_batchnorm_train_finish(cmd, &q, cnt[0], po[0], pm[0], pi[0], px[0], G, B, prm[0], prv[0]));
        get(&A, po[0], bad, 2 * S);
        double eb = A.s ? 0 : rel_err(bad, ro, 2 * S);
        CHECK(!A.s && eb > 1e-2, "%s: a part finished with its own count differs (%.1e)", what, eb);
    }
    for (int k = 0; k < A.nb; k++) vkr_buffer_destroy(A.bufs[k]);
}

static void check_refusals(vkr_context *ctx) {
    arena A = {.ctx = ctx};
    vkr_buffer *b[6];
    for (int k = 0; k < 6; k++) b[k] = buf(&A, NULL, 2 * S);
    vkr_bn_shape p = {2, C, H, W, 1e-3f, 0.9f, 1};
    vkr_cmd *c = NULL;
    if (!A.s) A.s = vkr_cmd_begin(ctx, &c);
    CHECK_OK(A.s, "buffers for the refusals");
    if (!A.s) {
        vkr_status s0 = vkr_batchnorm_train_finish(c, &p, 0, b[0], b[1], b[2], b[3], b[4], b[5], b[1], b[2]);
        vkr_status s1 = vkr_batchnorm_train_bwd_dinp(c, &p, NAN, b[0], b[1], b[2], b[3], b[4], b[5], b[1], b[2]);
        vkr_status s2 = vkr_batchnorm_train_bwd_dinp(c, &p, 30, NULL, b[1], b[2], b[3], b[4], b[5], b[1], b[2]);
        vkr_status s3 = vkr_batchnorm_train_stats(c, &p, b[0], b[1], b[1], b[2]);
        CHECK(s0 == VKR_ERR_INVALID && s1 == VKR_ERR_INVALID && s2 == VKR_ERR_INVALID && s3 == VKR_ERR_INVALID,
              "count 0, count NaN, no dinp, save_mean = save_m2 refused (%d %d %d %d)", s0, s1, s2, s3);
    }
    if (c) vkr_cmd_free(c);
    for (int k = 0; k < A.nb; k++) vkr_buffer_destroy(A.bufs[k]);
}

int main(void) {
    g_test_rng = 0x51ED27A1C0FFEEull;
    vkr_context *ctx = test_context(NULL, 0);
    if (!ctx) return test_finish();
    check(ctx, 0, 0, "default paths");
    check(ctx, 2 * S + 16, 8, "chunks of 2 images, blocks of 8");
    check_refusals(ctx);
    test_no_validation_messages(ctx, "sync_bn tests");
    vkr_context_destroy(ctx);
    return test_finish();
}
