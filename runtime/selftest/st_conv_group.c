/* conv2d with groups and dilation on the device vs runtime/ref/conv2d_ref.c: the depthwise
 * kernels (groups == c == k, shaders/dw_*.comp), grouped convolutions (one implicit GEMM per image
 * and group) and dilation in the GEMM kernels, on every GEMM kernel (each TILED tile shape and
 * TEXEL); odd shapes (C not a multiple of 4, 1x1 spatial, stride 2 on odd sizes, asymmetric
 * padding, stride / dilation pairs whose data-gradient phases have no taps), batch chunks, the
 * bias + BatchNorm + ReLU epilogue with a group's bias offset, and the reference's gradients vs
 * central finite differences. */
#include "ops/gemm_conv.h"
#include "ref/conv2d_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    vkr_gemm_variant v;
    int tile;
} k_var[] = {{VKR_GEMM_TILED, 0}, {VKR_GEMM_TILED, 1}, {VKR_GEMM_TILED, 2}, {VKR_GEMM_TEXEL, -1}};

static void force_variant(int i) {
    vkr_gemm_force_variant(i < 0 ? VKR_GEMM_AUTO : k_var[i].v);
    vkr__gemm_force_tiled_config(i < 0 ? -1 : k_var[i].tile);
}

typedef struct {
    int n, c, h, w, k, r, s, sh, sw, pt, pb, pl, pr, dh, dw, g;
    int split; /* > 0: batch chunks of this many images */
} grp_case;

static vkr_conv2d_shape to_shape(const grp_case *q) {
    vkr_conv2d_shape p = {q->n,  q->c,  q->h,  q->w,  q->k,  q->r,  q->s,  q->sh,
                          q->sw, q->pt, q->pb, q->pl, q->pr, q->dh, q->dw, q->g};
    return p;
}

static void label(char *buf, size_t n, int vi, const vkr_conv2d_shape *p, int split) {
    char v[24] = "";
    if (vi >= 0 && k_var[vi].tile >= 0)
        snprintf(v, sizeof v, "tiled%dx%d ", vkr__tiled_config_at(k_var[vi].tile)->bm,
                 vkr__tiled_config_at(k_var[vi].tile)->bn);
    else if (vi >= 0)
        snprintf(v, sizeof v, "texel ");
    int dwise = p->groups == p->c && p->groups == p->k && p->groups > 1;
    snprintf(buf, n, "%s%sn%d c%d %dx%d k%d %dx%d/%dx%d pad(%d,%d,%d,%d) dil %dx%d g%d%s", dwise ? "" : v,
             dwise ? "depthwise " : "", p->n, p->c, p->h, p->w, p->k, p->r, p->s, p->stride_h, p->stride_w, p->pad_t,
             p->pad_b, p->pad_l, p->pad_r, p->dil_h, p->dil_w, p->groups, split ? " split" : "");
}

static void grp_run(st_case *c, const void *kase) {
    const grp_case *q = kase;
    vkr_conv2d_shape p = to_shape(q);
    size_t ni = (size_t)p.n * p.c * p.h * p.w, nw = vkr_conv2d_weight_floats(&p), nk = (size_t)p.k;
    size_t ohw = (size_t)vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p), no = (size_t)p.n * p.k * ohw;
    float *hi = st_randf(c, ni, -1, 1), *hw = st_randf(c, nw, -1, 1), *hd = st_randf(c, no, -1, 1);
    float *ha = st_randf(c, 4 * nk, -1, 1); /* bias, mean, g, beta */
    double *di = st_to_double(c, hi, ni), *dw = st_to_double(c, hw, nw), *dd = st_to_double(c, hd, no);
    double *da = st_to_double(c, ha, 4 * nk);
    double *rout = st_doubles(c, no), *rbn = st_doubles(c, no), *rdi = st_doubles(c, ni), *rdw = st_doubles(c, nw);
    double *rdb = st_doubles(c, nk);
    vkr_buffer *bi = st_upf(c, hi, ni), *bw = st_upf(c, hw, nw), *bd = st_upf(c, hd, no), *ba = st_upf(c, ha, 4 * nk);
    vkr_buffer *bo = st_fill(c, no, 1e3f), *bdi = st_fill(c, ni, 1e3f), *bdw = st_fill(c, nw, 1e3f),
               *bdb = st_fill(c, nk, 1e3f);
    if (c->s) return;
    vkr_ref_conv2d_forward(rout, di, dw, da, &p); /* plane 0 of the affine: the bias */
    vkr_ref_conv2d_backward(rdi, rdw, rdb, dd, di, dw, &p);
    for (size_t i = 0; i < no; i++) {
        size_t k = (i / ohw) % nk;
        double v = (rout[i] - da[nk + k]) * da[2 * nk + k] + da[3 * nk + k];
        rbn[i] = v > 0 ? v : 0;
    }
    if (q->split) vkr__gemm_set_chunk_limit(vkr_st_conv_chunk_limit(c->ctx, &p, q->split));
    int dwise = p.groups == p.c && p.groups == p.k;
    /* depthwise: its kernels, then the grouped-GEMM path forced (TEXEL) */
    int nv = dwise ? 2 : (int)(sizeof k_var / sizeof k_var[0]);
    for (int v = 0; v < nv && !c->s; v++) {
        char shape[200];
        st_err fe = {0, 0}, ee = {0, 0}, be = {0, 0};
        force_variant(dwise ? (v ? 3 : -1) : v);
        vkr__conv_force_gemm_depthwise(dwise && v);
        label(shape, sizeof shape, dwise ? -1 : v, &p, q->split);
        if (dwise && v) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), " as group-gemm");
        ST_RUN(c, NULL, k, vkr_conv2d_forward(k, &p, bo, bi, bw, ba));
        st_cmp(c, bo, rout, no, 0, &fe);
        st_report(c, "forward", shape, fe, TOL_GEMM);
        ST_RUN(c, NULL, k, vkr_conv2d_bn_forward(k, &p, bo, bi, bw, ba, 1));
        st_cmp(c, bo, rbn, no, 0, &ee);
        st_report(c, "forward+bn+relu", shape, ee, TOL_GEMM);
        ST_RUN(c, NULL, k, vkr_conv2d_backward(k, &p, bdi, bdw, bdb, bd, bi, bw));
        st_cmp(c, bdi, rdi, ni, 0, &be);
        st_cmp(c, bdw, rdw, nw, 0, &be);
        st_cmp(c, bdb, rdb, nk, 0, &be);
        st_report(c, "backward", shape, be, TOL_GEMM);
    }
    force_variant(-1);
    vkr__conv_force_gemm_depthwise(0);
    vkr__gemm_set_chunk_limit(0);
}

typedef struct {
    vkr_conv2d_shape p;
    int which;
    const double *inp, *w;
} fd_ud;

static void grp_f(void *u, const double *x, double *out) {
    fd_ud *d = u;
    vkr_ref_conv2d_forward(out, d->which == 0 ? x : d->inp, d->which == 1 ? x : d->w, NULL, &d->p);
}

static void grp_fd(st_case *c, const void *kase) {
    vkr_conv2d_shape p = to_shape(kase);
    size_t n[2] = {(size_t)p.n * p.c * p.h * p.w, vkr_conv2d_weight_floats(&p)};
    size_t no = (size_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
    double *x[2] = {st_rand(c, n[0], -1, 1), st_rand(c, n[1], -1, 1)}, *g[2] = {st_doubles(c, n[0]), st_doubles(c, n[1])};
    double *r = st_rand(c, no, -1, 1);
    if (c->s) return;
    vkr_ref_conv2d_backward(g[0], g[1], NULL, r, x[0], x[1], &p);
    for (int i = 0; i < 2; i++) {
        fd_ud u = {p, i, x[0], x[1]};
        st_err e = {0, 0};
        st_fd(c, grp_f, &u, x[i], n[i], no, r, g[i], 40, FD_H_LINEAR, &e);
        char shape[200];
        label(shape, sizeof shape, -1, &p, 0);
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), i ? " d-weight" : " d-inp");
        st_report(c, ST_FD, shape, e, TOL_FD);
    }
}

/* groups that do not divide the channels, negative dilation: VKR_ERR_INVALID */
static void grp_invalid(st_case *c, const void *unused) {
    (void)unused;
    vkr_buffer *b = st_fill(c, 64, 0), *o = st_fill(c, 64, 0);
    vkr_cmd *cmd = st_begin(c);
    if (!cmd) return;
    vkr_conv2d_shape p = {1, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4};
    int bad = vkr_conv2d_forward(cmd, &p, o, b, b, NULL) != VKR_OK;
    vkr_conv2d_shape q = p;
    q.groups = 3;
    bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
    q = p;
    q.dil_h = -1;
    bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
    q = p;
    q.dil_w = 3; /* window 7 > padded 6 */
    bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
    st_submit(c, cmd, VKR_OK, NULL);
    st_report_bad(c, "argument checks", "groups not dividing, bad dilation refused", bad);
}

vkr_status vkr_check_conv2d_group(vkr_context *ctx, vkr_selftest *st) {
    /* n c h w  k r s  sh sw  pt pb pl pr  dh dw  g  split */
    static const grp_case cases[] = {
        {2, 5, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 0},      /* depthwise 3x3 */
        {3, 6, 11, 10, 6, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1, 6, 0},    /* depthwise /2, odd size, TF "same" pads */
        {2, 7, 1, 1, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 7, 0},      /* depthwise 1x1 spatial */
        {2, 3, 13, 9, 3, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3, 0},     /* depthwise 5x5/2 */
        {2, 4, 12, 12, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 4, 0},    /* depthwise dilated */
        {1, 3, 10, 11, 3, 3, 3, 2, 3, 3, 1, 2, 0, 3, 2, 3, 0},    /* depthwise dilation 3x2, stride 2x3 */
        {3, 5, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 1},      /* depthwise, batch chunks of 1 */
        {1, 9, 2, 3, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 9, 0},      /* depthwise, few pixels */
        {2, 6, 7, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0},      /* 2 groups */
        {2, 12, 9, 7, 8, 3, 3, 2, 2, 1, 0, 1, 0, 1, 1, 4, 0},     /* 4 groups /2 */
        {1, 8, 8, 8, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 4, 0},     /* pointwise grouped */
        {2, 6, 9, 9, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 3, 0},      /* dilated grouped */
        {2, 3, 11, 9, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0},     /* dilation 2 */
        {1, 5, 12, 13, 4, 3, 2, 2, 2, 1, 2, 0, 3, 3, 2, 1, 0},    /* dilation 3x2, stride 2 */
        {2, 4, 10, 10, 8, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 0},    /* stride 2 dilation 2: phases without taps */
        {2, 3, 9, 9, 4, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 1, 0},      /* stride 3 dilation 2 */
        {3, 5, 7, 7, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1},      /* dilated, batch chunks */
    };
    static const grp_case fd[] = {
        {2, 4, 7, 6, 4, 3, 3, 2, 1, 1, 0, 2, 1, 2, 1, 4, 0},
        {1, 6, 7, 7, 4, 3, 2, 2, 2, 1, 1, 0, 2, 2, 3, 2, 0},
    };
    st_suite S;
    st_suite_init(&S, ctx, st, "conv2d_group", 14);
    vkr_status s;
    if ((s = ST_EACH(&S, cases, grp_run)) || (s = ST_EACH(&S, fd, grp_fd))) return s;
    return ST_ONCE(&S, grp_invalid, NULL);
}
