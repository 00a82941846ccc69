/* The fused epilogues the graph uses (runtime/graph/graph_fold.c): conv2d / dense with the ReLU in
 * the GEMM epilogue, conv2d + inference BatchNorm + ReLU (both GEMM variants, every
 * output-store layout of the texel kernel) and add + ReLU, on the device vs the references
 * composed (conv2d_ref / dense_ref / add_ref, batchnorm_ref, then relu_ref).  Backward is the unfused ops' (checked under conv2d, dense, relu, add). */
#include "ref/add_ref.h"
#include "ref/batchnorm_ref.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "ref/relu_ref.h"
#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_GEMM 2e-5 /* as conv2d forward: fp32 sums of up to a few hundred products here, rel. to max |ref| */
#define TOL_ADD 1e-7  /* one fp32 rounding of a + b; the ReLU is exact */

typedef vkr_status (*rec_fn)(vkr_cmd *cmd, void *ud);

/* Records one op into a fresh stream and submits it. */
static vkr_status run(vkr_context *ctx, rec_fn f, void *ud) {
    vkr_cmd *c = NULL;
    vkr_status s = vkr_cmd_begin(ctx, &c);
    if (!s) s = f(c, ud);
    if (!s) s = vkr_cmd_submit(c);
    if (c) vkr_cmd_free(c);
    return s;
}

typedef struct {
    vkr_conv2d_shape p;
    int dense, bias;
    vkr_buffer *out, *inp, *w, *b;
    int bn; /* conv2d_bn_forward: b holds [4][k] bias, mean, gamma / sqrt(var + eps), beta */
} gemm_case;

static vkr_status rec_gemm(vkr_cmd *c, void *ud) {
    gemm_case *g = ud;
    if (g->bn) return vkr_conv2d_bn_forward(c, &g->p, g->out, g->inp, g->w, g->b, 1);
    if (g->dense)
        return vkr_dense_relu_forward(c, g->p.n, g->p.c, g->p.k, g->out, g->inp, g->w, g->bias ? g->b : NULL);
    return vkr_conv2d_relu_forward(c, &g->p, g->out, g->inp, g->w, g->bias ? g->b : NULL);
}

static vkr_status check_gemm(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, gemm_case *g) {
    const vkr_conv2d_shape *p = &g->p;
    size_t ni = (size_t)p->n * p->c * p->h * p->w, nw = (size_t)p->k * p->c * p->r * p->s;
    size_t no = (size_t)p->n * p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    float *hi = malloc(ni * 4), *hw = malloc(nw * 4), *hb = malloc(4 * p->k * 4), *got = NULL;
    double *lin = malloc(no * 8), *ref = malloc(no * 8), *di = NULL, *dw = NULL, *db = NULL;
    vkr_status s = hi && hw && hb && lin && ref ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) {
        vkr_rng_fill(rng, hi, ni, -1, 1), vkr_rng_fill(rng, hw, nw, -1, 1), vkr_rng_fill(rng, hb, 4 * p->k, -1, 1);
        for (int k = 0; k < p->k; k++) hb[2 * p->k + k] = 0.5f + 1.5f * hb[2 * p->k + k] * hb[2 * p->k + k]; /* scale > 0 */
        di = vkr_to_double(hi, ni), dw = vkr_to_double(hw, nw), db = vkr_to_double(hb, 4 * p->k);
    }
    if (!s && (!di || !dw || !db)) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) {
        if (g->dense) vkr_ref_dense_forward(p->n, p->c, p->k, lin, di, dw, g->bias ? db : NULL);
        else vkr_ref_conv2d_forward(lin, di, dw, g->bias ? db : NULL, p);
        if (g->bn) { /* BN with gamma = g, var = 1 - eps: gamma / sqrt(var + eps) is g exactly */
            vkr_bn_shape bs = {p->n, p->k, vkr_conv2d_out_h(p), vkr_conv2d_out_w(p), 1e-3f, 0.99f, 0};
            double *one = malloc(p->k * 8), *tmp = malloc(no * 8);
            for (int k = 0; one && k < p->k; k++) one[k] = 1.0 - 1e-3;
            if (one && tmp) {
                vkr_ref_batchnorm_infer_forward(tmp, lin, db + 2 * p->k, db + 3 * p->k, db + p->k, one, &bs);
                memcpy(lin, tmp, no * 8);
            }
            free(one), free(tmp);
        }
        vkr_ref_relu_forward(no, ref, lin);
        s = vkr_upload_new(ctx, hi, ni, &g->inp);
    }
    if (!s) s = vkr_upload_new(ctx, hw, nw, &g->w);
    if (!s && g->bn && !g->bias) memset(hb, 0, p->k * 4); /* plane 0: no conv bias */
    if (!s) s = vkr_upload_new(ctx, hb, 4 * p->k, &g->b);
    if (!s) s = vkr_buffer_create(ctx, no * 4, &g->out);
    static const vkr_gemm_variant vs[2] = {VKR_GEMM_TILED, VKR_GEMM_TEXEL};
    for (int v = 0; v < 2 && !s; v++) {
        vkr_gemm_force_variant(vs[v]);
        double ma, mr;
        if (!(s = run(ctx, rec_gemm, g)) && !(s = vkr_download_new(g->out, no, &got))) {
            vkr_compare(got, ref, no, &ma, &mr);
            char shape[160];
            snprintf(shape, sizeof shape, "%s %s n%d c%d %dx%d k%d %dx%d/%d%s", vkr_gemm_variant_name(vs[v]),
                     g->dense ? "dense" : "conv2d", p->n, p->c, p->h, p->w, p->k, p->r, p->s, p->stride_h,
                     g->bias ? "" : " nobias");
            vkr_selftest_add(st, g->bn ? "conv2d+bn+relu" : g->dense ? "dense+relu" : "conv2d+relu", "forward", shape, ma,
                             mr, TOL_GEMM);
        }
        free(got);
        got = NULL;
    }
    vkr_gemm_force_variant(VKR_GEMM_AUTO);
    vkr_buffer_destroy(g->out), vkr_buffer_destroy(g->inp), vkr_buffer_destroy(g->w), vkr_buffer_destroy(g->b);
    free(hi), free(hw), free(hb), free(lin), free(ref), free(di), free(dw), free(db);
    return s;
}

typedef struct {
    uint64_t n;
    vkr_buffer *a, *b;
} add_case;

static vkr_status rec_add(vkr_cmd *c, void *ud) {
    add_case *a = ud;
    return vkr_add_relu_forward(c, a->n, a->a, a->a, a->b); /* in place, as the graph runs it */
}

static vkr_status check_add(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, uint64_t n) {
    add_case A = {n, NULL, NULL};
    float *ha = malloc(n * 4), *hb = malloc(n * 4), *got = NULL;
    double *sum = malloc(n * 8), *ref = malloc(n * 8);
    vkr_status s = ha && hb && sum && ref ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) {
        vkr_rng_fill(rng, ha, n, -1, 1), vkr_rng_fill(rng, hb, n, -1, 1);
        for (uint64_t i = 0; i < n; i++) sum[i] = (double)ha[i] + (double)hb[i];
        vkr_ref_relu_forward(n, ref, sum);
        s = vkr_upload_new(ctx, ha, n, &A.a);
    }
    if (!s) s = vkr_upload_new(ctx, hb, n, &A.b);
    if (!s) s = run(ctx, rec_add, &A);
    if (!s) s = vkr_download_new(A.a, n, &got);
    if (!s) {
        double ma, mr;
        char shape[64];
        vkr_compare(got, ref, n, &ma, &mr);
        snprintf(shape, sizeof shape, "n%llu in place", (unsigned long long)n);
        vkr_selftest_add(st, "add+relu", "forward", shape, ma, mr, TOL_ADD);
    }
    vkr_buffer_destroy(A.a), vkr_buffer_destroy(A.b);
    free(ha), free(hb), free(got), free(sum), free(ref);
    return s;
}

vkr_status vkr_check_fused(vkr_context *ctx, vkr_selftest *st) {
    vkr_rng rng;
    vkr_rng_seed(&rng, 1010);
    /* texel output stores: scalar (7x6 pixels), vec4 along pixels (4x4), vec4 along channels (dense, 8 units) */
    gemm_case cases[] = {
        {{2, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1}, 0, 1, NULL, NULL, NULL, NULL, 0},
        {{2, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0}, 0, 0, NULL, NULL, NULL, NULL, 0},
        {{1, 3, 9, 9, 5, 3, 3, 2, 2, 1, 0, 1, 0}, 0, 1, NULL, NULL, NULL, NULL, 0},
        {{3, 12, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0}, 1, 1, NULL, NULL, NULL, NULL, 0},
        {{3, 5, 1, 1, 7, 1, 1, 1, 1, 0, 0, 0, 0}, 1, 0, NULL, NULL, NULL, NULL, 0},
        {{2, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1}, 0, 1, NULL, NULL, NULL, NULL, 1},
        {{2, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0}, 0, 0, NULL, NULL, NULL, NULL, 1},
        {{3, 8, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0}, 0, 1, NULL, NULL, NULL, NULL, 1},
    };
    vkr_status s = VKR_OK;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && !s; i++) s = check_gemm(ctx, st, &rng, &cases[i]);
    if (!s) s = check_add(ctx, st, &rng, 1000);
    return s;
}
