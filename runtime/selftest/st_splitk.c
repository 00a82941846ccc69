/* Split-K weight and bias gradients of conv2d / dense (runtime/ops/gemm_conv.c): for forced
 * split counts (even and uneven ranges, more splits than the reduction allows, batch chunks
 * on top), both GEMM variants, the automatic choice aimed at a test target, and a scratch
 * buffer lent by the caller sized by vkr__conv_backward_scratch:
 * (TILED with 64x64 and 128x128 tiles, TEXEL):
 *   - dweight and dbias match the references (runtime/ref) within TOL_GEMM;
 *   - two runs give bitwise identical results (partials summed in a fixed order);
 *   - the split really ran (one more dispatch per GEMM: the partials' sum);
 *   - with the lent scratch, no op had to grow the stream's scratch. */
#include "ops/gemm_conv.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    vkr_conv2d_shape p;
    int dense;
    int chunk;  /* > 0: batch chunks of this many images */
    int splits; /* forced split count; 0: automatic with target SPLIT_TEST_TARGET */
    int lend;   /* 1: the caller lends a scratch buffer of vkr__conv_backward_scratch bytes */
} split_case;

#define SPLIT_TEST_TARGET 64 /* workgroups the automatic choice aims at in these checks */

typedef struct {
    vkr_buffer *inp, *w, *dout, *dw, *db, *lent;
} split_bufs;

/* One backward (dweight, dbias) into B; *nd = dispatches; *grown = the stream had to grow its scratch. */
static vkr_status run_bwd(vkr_context *ctx, const split_case *k, split_bufs *B, uint32_t *nd, int *grown) {
    vkr_cmd *cmd;
    vkr_status s = vkr_cmd_begin(ctx, &cmd);
    if (s) return s;
    uint64_t lent = B->lent ? B->lent->size : 0;
    if (B->lent) vkr_cmd_set_scratch(cmd, B->lent);
    const vkr_conv2d_shape *p = &k->p;
    if (k->dense) s = vkr_dense_backward(cmd, p->n, p->c, p->k, NULL, B->dw, B->db, B->dout, B->inp, B->w);
    else s = vkr_conv2d_backward(cmd, p, NULL, B->dw, B->db, B->dout, B->inp, B->w);
    *nd = vkr_cmd_dispatch_count(cmd);
    *grown = B->lent && vkr__cmd_scratch_size(cmd) != lent;
    if (!s) s = vkr_cmd_submit(cmd);
    vkr_cmd_free(cmd);
    return s;
}

static vkr_status download2(const split_bufs *B, size_t nw, size_t nb, float *out) {
    vkr_status s = vkr_buffer_download(B->dw, 0, out, nw * 4);
    return s ? s : vkr_buffer_download(B->db, 0, out + nw, nb * 4);
}

static void label_of(char *buf, size_t n, vkr_gemm_variant v, int tile, const split_case *k) {
    const vkr_conv2d_shape *p = &k->p;
    char vn[32];
    if (tile > 0) snprintf(vn, sizeof vn, "tiled%dx%d", vkr__tiled_config_at(tile)->bm, vkr__tiled_config_at(tile)->bn);
    else snprintf(vn, sizeof vn, "%s", vkr_gemm_variant_name(v));
    int o = k->dense ? snprintf(buf, n, "%s %dx%d->%d", vn, p->n, p->c, p->k)
                     : snprintf(buf, n, "%s n%d c%d %dx%d k%d %dx%d/%d", vn, p->n, p->c, p->h, p->w, p->k, p->r, p->s,
                                p->stride_h);
    if (k->splits) o += snprintf(buf + o, n - o, " S%d", k->splits);
    else o += snprintf(buf + o, n - o, " auto(target %d)", SPLIT_TEST_TARGET);
    if (k->chunk) o += snprintf(buf + o, n - o, " chunks of %d", k->chunk);
    if (k->lend) snprintf(buf + o, n - o, " lent scratch");
}

/* All variants of one case; the host data and references are shared. */
static void split_run(st_case *c, const void *kase) {
    const split_case *k = kase;
    const vkr_conv2d_shape *p = &k->p;
    size_t ohw = (size_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    size_t ni = (size_t)p->n * p->c * p->h * p->w, nw = (size_t)p->k * p->c * p->r * p->s, nb = (size_t)p->k;
    size_t no = (size_t)p->n * p->k * ohw;
    float *hi = st_randf(c, ni, -1, 1), *hw = st_randf(c, nw, -1, 1), *hd = st_randf(c, no, -1, 1);
    float *g1 = st_alloc(c, (nw + nb) * 4), *g2 = st_alloc(c, (nw + nb) * 4);
    double *di = st_to_double(c, hi, ni), *dw = st_to_double(c, hw, nw), *dd = st_to_double(c, hd, no);
    double *ref = st_doubles(c, nw + nb);
    split_bufs B = {st_upf(c, hi, ni), st_upf(c, hw, nw), st_upf(c, hd, no), st_fill(c, nw, 0), st_fill(c, nb, 0), NULL};
    if (c->s) return;
    if (k->dense) vkr_ref_dense_backward(p->n, p->c, p->k, NULL, ref, ref + nw, dd, di, dw);
    else vkr_ref_conv2d_backward(NULL, ref, ref + nw, dd, di, dw, p);
    static const vkr_gemm_variant vs[] = {VKR_GEMM_TILED, VKR_GEMM_TILED, VKR_GEMM_TEXEL};
    static const int tile[] = {0, 2, -1}; /* 64x64 and 128x128 tiles */
    for (size_t v = 0; v < 3 && !c->s; v++) {
        vkr_gemm_force_variant(vs[v]);
        vkr__gemm_force_tiled_config(tile[v]);
        vkr__gemm_force_split(k->splits);
        vkr__gemm_set_split_target(SPLIT_TEST_TARGET);
        if (k->chunk) vkr__gemm_set_chunk_limit(vkr_st_conv_chunk_limit(c->ctx, p, k->chunk));
        uint64_t need = vkr__conv_backward_scratch(c->ctx, p, 1, 1);
        B.lent = NULL;
        if (k->lend && need && !(c->s = vkr_buffer_create(c->ctx, need, &B.lent))) st_keep(c, B.lent);
        uint32_t nd1 = 0, nd0 = 0;
        int grown = 0, grown2 = 0, g0;
        if (!c->s) c->s = run_bwd(c->ctx, k, &B, &nd1, &grown);
        if (!c->s) c->s = download2(&B, nw, nb, g1);
        if (!c->s) c->s = vkr_buffer_fill_zero(B.dw); /* the second run must rewrite everything */
        if (!c->s) c->s = run_bwd(c->ctx, k, &B, &nd1, &grown2);
        if (!c->s) c->s = download2(&B, nw, nb, g2);
        vkr__gemm_force_split(1); /* unsplit: the dispatch count to compare with */
        vkr__gemm_set_split_target(0);
        split_bufs U = B;
        U.lent = NULL;
        if (!c->s) c->s = run_bwd(c->ctx, k, &U, &nd0, &g0);
        vkr__gemm_force_split(0);
        vkr__gemm_set_chunk_limit(0);
        if (c->s) break;
        st_err e = {0, 0};
        st_cmp_host(g1, ref, nw, 0, &e);
        st_cmp_host(g1 + nw, ref + nw, nb, 0, &e);
        char label[160];
        label_of(label, sizeof label, vs[v], tile[v], k);
        st_report(c, "backward split-K", label, e, TOL_GEMM);
        /* bitwise identical runs; the split ran (more dispatches); a lent scratch sufficed */
        int same = memcmp(g1, g2, (nw + nb) * 4) == 0, split_ran = nd1 > nd0, fits = !grown && !grown2;
        if (k->lend && need == 0) fits = 0; /* the query must announce the scratch the split uses */
        char l2[240];
        snprintf(l2, sizeof l2, "%s:%s%s%s", label, same ? "" : " runs differ", split_ran ? "" : " no split",
                 fits ? "" : " scratch query too small");
        st_report_bad(c, "split-K deterministic, split ran", l2, !same + !split_ran + !fits);
    }
    vkr_gemm_force_variant(VKR_GEMM_AUTO);
    vkr__gemm_force_tiled_config(-1);
    vkr__gemm_force_split(0);
    vkr__gemm_set_split_target(0);
    vkr__gemm_set_chunk_limit(0);
}

vkr_status vkr_st_check_splitk(vkr_context *ctx, vkr_selftest *st, int dense) {
    /* conv: n c h w k r s sh sw pt pb pl pr */
    static const split_case conv[] = {
        {{3, 5, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 2, 0},    /* Kr = 189: uneven halves */
        {{3, 5, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 3, 1},    /* lent scratch */
        {{3, 5, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 1000, 0}, /* capped: one step per split */
        {{2, 8, 6, 6, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 0, 0, 5, 0},   /* pointwise: vec4 operands */
        {{3, 3, 23, 17, 13, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1}, 0, 0, 7, 0}, /* conv1-like 7x7/2 */
        {{5, 5, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 2, 3, 1},    /* batch chunks of 2, 2, 1 */
        {{4, 8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 1},  /* automatic choice */
    };
    /* dense: n = batch, c = in, k = out */
#define D(b, i, o) {b, i, 1, 1, o, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}
    static const split_case dn[] = {
        {D(37, 20, 9), 1, 0, 3, 0},
        {D(64, 12, 8), 1, 0, 5, 1},
        {D(13, 16, 12), 1, 5, 2, 0},
    };
#undef D
    st_suite S;
    st_suite_init(&S, ctx, st, dense ? "dense" : "conv2d", dense ? 31 : 30);
    return dense ? ST_EACH(&S, dn, split_run) : ST_EACH(&S, conv, split_run);
}
