/* The fused epilogues the graph uses (runtime/graph/graph_fold.c): conv2d / dense with the ReLU in
 * the GEMM epilogue, conv2d + inference BatchNorm + ReLU (both GEMM variants, every
 * output-store layout of the texel kernel) and add + ReLU, on the device vs the references
 * composed (conv2d_ref / dense_ref / add_ref, batchnorm_ref, then relu_ref).  Backward is the unfused ops'
 * (checked under conv2d, dense, relu, add). */
#include "ref/batchnorm_ref.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "ref/relu_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    vkr_conv2d_shape p;
    int dense, bias;
    int bn; /* conv2d_bn_forward: b holds [4][k] bias, mean, gamma / sqrt(var + eps), beta */
} gemm_case;

static vkr_status rec_gemm(vkr_cmd *c, const gemm_case *g, vkr_buffer *out, vkr_buffer *inp, vkr_buffer *w,
                           vkr_buffer *b) {
    if (g->bn) return vkr_conv2d_bn_forward(c, &g->p, out, inp, w, b, 1);
    if (g->dense) return vkr_dense_relu_forward(c, g->p.n, g->p.c, g->p.k, out, inp, w, g->bias ? b : NULL);
    return vkr_conv2d_relu_forward(c, &g->p, out, inp, w, g->bias ? b : NULL);
}

static void gemm_run(st_case *c, const void *kase) {
    const gemm_case *g = kase;
    const vkr_conv2d_shape *p = &g->p;
    size_t ni = (size_t)p->n * p->c * p->h * p->w, nw = (size_t)p->k * p->c * p->r * p->s;
    size_t no = (size_t)p->n * p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    float *hi = st_randf(c, ni, -1, 1), *hw = st_randf(c, nw, -1, 1), *hb = st_randf(c, 4 * p->k, -1, 1);
    double *lin = st_doubles(c, no), *ref = st_doubles(c, no), *one = st_doubles(c, p->k), *tmp = st_doubles(c, no);
    if (c->s) return;
    for (int k = 0; k < p->k; k++) hb[2 * p->k + k] = 0.5f + 1.5f * hb[2 * p->k + k] * hb[2 * p->k + k]; /* scale > 0 */
    double *di = st_to_double(c, hi, ni), *dw = st_to_double(c, hw, nw), *db = st_to_double(c, hb, 4 * p->k);
    if (c->s) return;
    if (g->dense) vkr_ref_dense_forward(p->n, p->c, p->k, lin, di, dw, g->bias ? db : NULL);
    else vkr_ref_conv2d_forward(lin, di, dw, g->bias ? db : NULL, p);
    if (g->bn) { /* BN with gamma = g, var = 1 - eps: gamma / sqrt(var + eps) is g exactly */
        vkr_bn_shape bs = {p->n, p->k, vkr_conv2d_out_h(p), vkr_conv2d_out_w(p), 1e-3f, 0.99f, 0};
        for (int k = 0; k < p->k; k++) one[k] = 1.0 - 1e-3;
        vkr_ref_batchnorm_infer_forward(tmp, lin, db + 2 * p->k, db + 3 * p->k, db + p->k, one, &bs);
        memcpy(lin, tmp, no * 8);
    }
    vkr_ref_relu_forward(no, ref, lin);
    if (g->bn && !g->bias) memset(hb, 0, p->k * 4); /* plane 0: no conv bias */
    vkr_buffer *bi = st_upf(c, hi, ni), *bw = st_upf(c, hw, nw), *bb = st_upf(c, hb, 4 * p->k), *bo = st_fill(c, no, NAN);
    static const vkr_gemm_variant vs[2] = {VKR_GEMM_TILED, VKR_GEMM_TEXEL};
    c->op = g->bn ? "conv2d+bn+relu" : g->dense ? "dense+relu" : "conv2d+relu";
    for (int v = 0; v < 2 && !c->s; v++) {
        vkr_gemm_force_variant(vs[v]);
        ST_RUN(c, NULL, k, rec_gemm(k, g, bo, bi, bw, bb));
        st_err e = {0, 0};
        st_cmp(c, bo, ref, no, 0, &e);
        char shape[160];
        snprintf(shape, sizeof shape, "%s %s n%d c%d %dx%d k%d %dx%d/%d%s", vkr_gemm_variant_name(vs[v]),
                 g->dense ? "dense" : "conv2d", p->n, p->c, p->h, p->w, p->k, p->r, p->s, p->stride_h,
                 g->bias ? "" : " nobias");
        st_report(c, "forward", shape, e, TOL_GEMM);
    }
    vkr_gemm_force_variant(VKR_GEMM_AUTO);
}

/* add + ReLU in place, as the graph runs it */
static void add_run(st_case *c, const void *kase) {
    uint64_t n = *(const uint64_t *)kase;
    float *ha = st_randf(c, n, -1, 1), *hb = st_randf(c, n, -1, 1);
    double *sum = st_doubles(c, n), *ref = st_doubles(c, n);
    if (c->s) return;
    for (uint64_t i = 0; i < n; i++) sum[i] = (double)ha[i] + (double)hb[i];
    vkr_ref_relu_forward(n, ref, sum);
    vkr_buffer *ba = st_upf(c, ha, n), *bb = st_upf(c, hb, n);
    ST_RUN(c, NULL, k, vkr_add_relu_forward(k, n, ba, ba, bb));
    st_err e = {0, 0};
    st_cmp(c, ba, ref, n, 0, &e);
    char shape[64];
    snprintf(shape, sizeof shape, "n%llu in place", (unsigned long long)n);
    c->op = "add+relu";
    st_report(c, "forward", shape, e, TOL_ADD_FWD);
}

vkr_status vkr_check_fused(vkr_context *ctx, vkr_selftest *st) {
    /* texel output stores: scalar (7x6 pixels), vec4 along pixels (4x4), vec4 along channels (dense, 8 units) */
    static const gemm_case cases[] = {
        {{2, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 1, 0},
        {{2, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 0, 0, 0},
        {{1, 3, 9, 9, 5, 3, 3, 2, 2, 1, 0, 1, 0, 1, 1, 1}, 0, 1, 0},
        {{3, 12, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 1, 1, 0},
        {{3, 5, 1, 1, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 1, 0, 0},
        {{2, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 1, 1},
        {{2, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 0, 0, 1},
        {{3, 8, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 0, 1, 1},
    };
    static const uint64_t add[] = {1000};
    st_suite S;
    st_suite_init(&S, ctx, st, "fused", 1010);
    vkr_status s = ST_EACH(&S, cases, gemm_run);
    return s ? s : ST_EACH(&S, add, add_run);
}
