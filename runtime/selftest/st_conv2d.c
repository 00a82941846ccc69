/* conv2d and dense on the device (every GEMM kernel: each TILED tile shape and TEXEL) vs
 * runtime/ref/conv2d_ref.c and runtime/ref/dense_ref.c; the references' backward vs central
 * finite differences; split-K in st_splitk.c. */
#include "ops/gemm_conv.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Every kernel under test: each TILED tile shape (vkr__tiled_config) and TEXEL. */
static const struct {
    vkr_gemm_variant v;
    int tile; /* TILED: index into the tile table */
} k_variants[] = {{VKR_GEMM_TILED, 0}, {VKR_GEMM_TILED, 1}, {VKR_GEMM_TILED, 2}, {VKR_GEMM_TEXEL, -1}};

/* Forces variant i of k_variants (-1: back to the device's choice). */
static void force_variant(int i) {
    vkr_gemm_force_variant(i < 0 ? VKR_GEMM_AUTO : k_variants[i].v);
    vkr__gemm_force_tiled_config(i < 0 ? -1 : k_variants[i].tile);
}

typedef struct {
    int n, c, h, w, k, r, s, sh, sw, pt, pb, pl, pr;
    int bias;
    int split; /* > 0: force batch chunks of this many images */
} conv_case;

static vkr_conv2d_shape to_shape(const conv_case *c) {
    vkr_conv2d_shape p = {c->n, c->c, c->h, c->w, c->k, c->r, c->s, c->sh, c->sw, c->pt, c->pb, c->pl, c->pr, 1, 1, 1};
    return p;
}

static void shape_str(char *buf, size_t size, int vi, const vkr_conv2d_shape *p, int dense, int bias,
                      int split, const char *extra) {
    char vname[40] = "";
    if (vi >= 0 && k_variants[vi].tile > 0)
        snprintf(vname, sizeof vname, "tiled%dx%d", vkr__tiled_config_at(k_variants[vi].tile)->bm,
                 vkr__tiled_config_at(k_variants[vi].tile)->bn);
    else if (vi >= 0)
        snprintf(vname, sizeof vname, "%s", vkr_gemm_variant_name(k_variants[vi].v));
    const char *vn = vname, *sp = vi < 0 ? "" : " ";
    if (dense)
        snprintf(buf, size, "%s%s%dx%d->%d%s%s%s", vn, sp, p->n, p->c, p->k, bias ? "" : " nobias",
                 split ? " split" : "", extra);
    else
    {
        char st[32];
        if (p->stride_w == p->stride_h) snprintf(st, sizeof st, "%d", p->stride_h);
        else snprintf(st, sizeof st, "%dx%d", p->stride_h, p->stride_w);
        snprintf(buf, size, "%s%sn%d c%d %dx%d k%d %dx%d/%s pad(%d,%d,%d,%d)%s%s%s", vn, sp, p->n, p->c, p->h, p->w,
                 p->k, p->r, p->s, st, p->pad_t, p->pad_b, p->pad_l, p->pad_r, bias ? "" : " nobias",
                 split ? " split" : "", extra);
    }
}

/* Device buffers of one shape. */
typedef struct {
    vkr_buffer *inp, *w, *b, *out, *dout, *dinp, *dw, *db;
} bufs;

static vkr_status record(vkr_cmd *cmd, int dense, int fwd, const vkr_conv2d_shape *p, const bufs *B, int use_bias,
                         int want_dinp, int want_dw, int want_db) {
    if (dense) {
        if (fwd) return vkr_dense_forward(cmd, p->n, p->c, p->k, B->out, B->inp, B->w, use_bias ? B->b : NULL);
        return vkr_dense_backward(cmd, p->n, p->c, p->k, want_dinp ? B->dinp : NULL, want_dw ? B->dw : NULL,
                                  want_db ? B->db : NULL, B->dout, B->inp, B->w);
    }
    if (fwd) return vkr_conv2d_forward(cmd, p, B->out, B->inp, B->w, use_bias ? B->b : NULL);
    return vkr_conv2d_backward(cmd, p, want_dinp ? B->dinp : NULL, want_dw ? B->dw : NULL, want_db ? B->db : NULL,
                               B->dout, B->inp, B->w);
}

static int is_dense(const st_case *c) { return !strcmp(c->op, "dense"); }

/* One shape: reference once, then every variant; forward and backward lines. */
static void conv_run(st_case *c, const void *kase) {
    const conv_case *cc = kase;
    int dense = is_dense(c);
    vkr_conv2d_shape p = to_shape(cc);
    size_t ni = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.k * p.c * p.r * p.s, nb = (size_t)p.k,
           no = (size_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
    float *hi = st_randf(c, ni, -1, 1), *hw = st_randf(c, nw, -1, 1), *hb = st_randf(c, nb, -1, 1), *hd = st_randf(c, no, -1, 1);
    double *di = st_to_double(c, hi, ni), *dw = st_to_double(c, hw, nw), *db = st_to_double(c, hb, nb), *dd = st_to_double(c, hd, no);
    double *rout = st_doubles(c, no), *rdi = st_doubles(c, ni), *rdw = st_doubles(c, nw), *rdb = st_doubles(c, nb);
    /* outputs hold stale values (1e3) */
    bufs B = {st_upf(c, hi, ni), st_upf(c, hw, nw), st_upf(c, hb, nb), st_fill(c, no, 1e3f),
              st_upf(c, hd, no), st_fill(c, ni, 1e3f), st_fill(c, nw, 1e3f), st_fill(c, nb, 1e3f)};
    if (c->s) return;
    if (dense) {
        vkr_ref_dense_forward(p.n, p.c, p.k, rout, di, dw, cc->bias ? db : NULL);
        vkr_ref_dense_backward(p.n, p.c, p.k, rdi, rdw, rdb, dd, di, dw);
    } else {
        vkr_ref_conv2d_forward(rout, di, dw, cc->bias ? db : NULL, &p);
        vkr_ref_conv2d_backward(rdi, rdw, rdb, dd, di, dw, &p);
    }
    if (cc->split) vkr__gemm_set_chunk_limit(vkr_st_conv_chunk_limit(c->ctx, &p, cc->split));
    for (size_t v = 0; v < sizeof k_variants / sizeof k_variants[0] && !c->s; v++) {
        char shape[160];
        st_err fe = {0, 0}, be = {0, 0};
        uint32_t nd = 0;
        force_variant((int)v);
        /* forward (one dispatch per batch chunk: the split cases must really split) */
        ST_RUN(c, &nd, k, record(k, dense, 1, &p, &B, cc->bias, 0, 0, 0));
        st_cmp(c, B.out, rout, no, 0, &fe);
        if (cc->split && nd < (uint32_t)((p.n + cc->split - 1) / cc->split)) fe.abs = fe.rel = INFINITY;
        shape_str(shape, sizeof shape, (int)v, &p, dense, cc->bias, cc->split, "");
        st_report(c, "forward", shape, fe, TOL_GEMM);
        /* backward: all three gradients (overwriting stale values) */
        ST_RUN(c, NULL, k, record(k, dense, 0, &p, &B, 1, 1, 1, 1));
        st_cmp(c, B.dinp, rdi, ni, 0, &be);
        st_cmp(c, B.dw, rdw, nw, 0, &be);
        st_cmp(c, B.db, rdb, nb, 0, &be);
        st_report(c, "backward", shape, be, TOL_GEMM);
    }
    force_variant(-1);
    vkr__gemm_set_chunk_limit(0);
}

/* Backward with some gradients NULL: the others must still be right, the NULL ones untouched. */
static void conv_partial(st_case *c, const void *kase) {
    const conv_case *cc = kase;
    int dense = is_dense(c);
    vkr_conv2d_shape p = to_shape(cc);
    size_t ni = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.k * p.c * p.r * p.s;
    size_t no = (size_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
    float *hi = st_randf(c, ni, -1, 1), *hw = st_randf(c, nw, -1, 1), *hd = st_randf(c, no, -1, 1);
    double *di = st_to_double(c, hi, ni), *dw = st_to_double(c, hw, nw), *dd = st_to_double(c, hd, no);
    double *rdi = st_doubles(c, ni), *rdw = st_doubles(c, nw);
    bufs B = {.inp = st_upf(c, hi, ni), .w = st_upf(c, hw, nw), .dout = st_upf(c, hd, no)};
    B.dinp = st_fill(c, ni, 0), B.dw = st_fill(c, nw, 0);
    float *mark_i = st_alloc(c, ni * 4), *mark_w = st_alloc(c, nw * 4);
    if (c->s) return;
    for (size_t i = 0; i < ni; i++) mark_i[i] = 7.0f;
    for (size_t i = 0; i < nw; i++) mark_w[i] = 7.0f;
    if (dense) vkr_ref_dense_backward(p.n, p.c, p.k, rdi, rdw, NULL, dd, di, dw);
    else vkr_ref_conv2d_backward(rdi, rdw, NULL, dd, di, dw, &p);
    for (size_t v = 0; v < sizeof k_variants / sizeof k_variants[0] && !c->s; v++) {
        st_err e = {0, 0};
        force_variant((int)v);
        for (int which = 0; which < 2 && !c->s; which++) {
            /* which 0: only dweight (dinp must keep its marker); 1: only dinp */
            vkr_buffer *want = which ? B.dinp : B.dw, *skip = which ? B.dw : B.dinp;
            size_t nwant = which ? ni : nw, nskip = which ? nw : ni;
            c->s = vkr_buffer_upload(skip, 0, which ? mark_w : mark_i, nskip * 4);
            ST_RUN(c, NULL, k, record(k, dense, 0, &p, &B, 0, which == 1, which == 0, 0));
            st_cmp(c, want, which ? rdi : rdw, nwant, 0, &e);
            float *got = st_down(c, skip, nskip);
            for (size_t i = 0; got && i < nskip; i++)
                if (got[i] != 7.0f) e.abs = e.rel = INFINITY; /* a NULL gradient was written */
        }
        char shape[200];
        shape_str(shape, sizeof shape, (int)v, &p, dense, 0, 0, " only-dw/only-dx");
        st_report(c, "backward", shape, e, TOL_GEMM);
    }
    force_variant(-1);
}

/* ------------------------------------------------------------ finite differences */

typedef struct {
    vkr_conv2d_shape p;
    int dense;
    int which; /* 0: x = inp, 1: x = weight, 2: x = bias */
    const double *inp, *w, *b;
} fd_ud;

static void conv_f(void *u, const double *x, double *out) {
    fd_ud *d = u;
    const double *inp = d->which == 0 ? x : d->inp, *w = d->which == 1 ? x : d->w, *b = d->which == 2 ? x : d->b;
    if (d->dense) vkr_ref_dense_forward(d->p.n, d->p.c, d->p.k, out, inp, w, b);
    else vkr_ref_conv2d_forward(out, inp, w, b, &d->p);
}

static void conv_fd(st_case *c, const void *kase) {
    int dense = is_dense(c);
    vkr_conv2d_shape p = to_shape(kase);
    size_t n[3] = {(size_t)p.n * p.c * p.h * p.w, (size_t)p.k * p.c * p.r * p.s, (size_t)p.k};
    size_t no = (size_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
    double *x[3], *g[3], *r;
    for (int i = 0; i < 3; i++) x[i] = st_doubles(c, n[i]), g[i] = st_doubles(c, n[i]);
    r = st_doubles(c, no);
    if (c->s) return;
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; j < n[i]; j++) x[i][j] = vkr_rng_uniform(c->rng, -1, 1);
    for (size_t j = 0; j < no; j++) r[j] = vkr_rng_uniform(c->rng, -1, 1);
    /* dL/d* of L = sum r * out: the backward of dout = r */
    if (dense) vkr_ref_dense_backward(p.n, p.c, p.k, g[0], g[1], g[2], r, x[0], x[1]);
    else vkr_ref_conv2d_backward(g[0], g[1], g[2], r, x[0], x[1], &p);
    static const char *names[3] = {" d-inp", " d-weight", " d-bias"};
    for (int i = 0; i < 3; i++) {
        fd_ud u = {p, dense, i, x[0], x[1], x[2]};
        st_err e = {0, 0};
        st_fd(c, conv_f, &u, x[i], n[i], no, r, g[i], 40, FD_H_LINEAR, &e);
        char shape[200];
        shape_str(shape, sizeof shape, -1, &p, dense, 1, 0, names[i]);
        st_report(c, ST_FD, shape, e, TOL_FD);
    }
}

/* Bad arguments are refused with VKR_ERR_INVALID, good ones accepted. */
static void conv_invalid(st_case *c, const void *unused) {
    (void)unused;
    vkr_buffer *b = st_fill(c, 16, 0), *o = st_fill(c, 16, 0);
    vkr_cmd *cmd = st_begin(c);
    if (!cmd) return;
    int bad = 0;
    if (is_dense(c)) {
        bad += vkr_dense_forward(cmd, 0, 4, 4, o, b, b, NULL) != VKR_ERR_INVALID;
        bad += vkr_dense_forward(cmd, 4, 5, 4, o, b, b, NULL) != VKR_ERR_INVALID; /* inp: 20 > 16 floats */
        bad += vkr_dense_forward(cmd, 4, 4, 4, o, b, b, b) != VKR_OK;
        bad += vkr_dense_backward(cmd, 4, 4, 4, o, NULL, NULL, NULL, b, b) != VKR_ERR_INVALID; /* no dout */
        bad += vkr_dense_backward(cmd, 4, 4, 5, o, NULL, NULL, b, b, b) != VKR_ERR_INVALID;    /* weight 20 */
    } else {
        vkr_conv2d_shape p = {1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1};
        bad += vkr_conv2d_forward(cmd, &p, o, b, b, NULL) != VKR_OK;
        vkr_conv2d_shape q = p;
        q.r = 5; /* larger than the input */
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        q = p;
        q.stride_h = 0;
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        q = p;
        q.pad_l = -1;
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        q = p;
        q.c = 2; /* inp needs 32 floats */
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        bad += vkr_conv2d_backward(cmd, &p, o, NULL, NULL, NULL, b, b) != VKR_ERR_INVALID; /* no dout */
        bad += vkr_conv2d_forward(cmd, NULL, o, b, b, NULL) != VKR_ERR_INVALID;
    }
    st_submit(c, cmd, VKR_OK, NULL);
    st_report_bad(c, "argument checks", "bad shapes/buffers refused", bad);
}

/* Device cases, partial gradients (one shape), finite differences, split-K, argument checks. */
static vkr_status check_gemm_op(st_suite *S, const conv_case *cases, size_t ncases, const conv_case *partial,
                                const conv_case *fd, size_t nfd, int dense) {
    vkr_status s;
    if ((s = st_each(S, cases, ncases, sizeof *cases, conv_run)) || (s = ST_ONCE(S, conv_partial, partial)) ||
        (s = st_each(S, fd, nfd, sizeof *fd, conv_fd)) || (s = vkr_st_check_splitk(S->ctx, S->st, dense)))
        return s;
    return ST_ONCE(S, conv_invalid, NULL);
}

vkr_status vkr_check_conv2d(vkr_context *ctx, vkr_selftest *st) {
    /* n c h w  k r s  sh sw  pt pb pl pr  bias split */
    static const conv_case cases[] = {
        {1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
        {3, 7, 13, 11, 5, 3, 3, 2, 2, 1, 2, 0, 1, 1, 0},
        {1, 3, 23, 17, 13, 7, 7, 2, 2, 3, 3, 3, 3, 1, 0},   /* conv1-like 7x7/2 pad 3 */
        {3, 13, 8, 8, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},     /* pointwise, HW % 4 == 0 */
        {1, 127, 7, 7, 13, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},   /* pointwise, HW = 49 */
        {3, 8, 6, 10, 12, 1, 1, 2, 2, 0, 0, 0, 0, 1, 0},    /* 1x1/2 downsampling */
        {1, 7, 9, 12, 3, 1, 3, 1, 1, 0, 0, 1, 1, 1, 0},     /* 1x3 */
        {3, 3, 10, 7, 7, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0},     /* padding > kernel/2 */
        {1, 16, 8, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},    /* C*R*S % 4 == 0 */
        {3, 127, 5, 6, 3, 3, 3, 2, 1, 0, 1, 1, 0, 0, 0},    /* asymmetric stride and pad */
        {1, 4, 9, 9, 5, 3, 3, 3, 3, 4, 2, 2, 4, 1, 0},      /* stride 3, pad > kernel */
        {3, 5, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      /* batch chunks of 1 image */
        {3, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2},      /* chunks, vec4 operands */
        {1, 16, 2, 2, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},    /* few pixels, many rows */
    };
    static const conv_case fd[] = {
        {2, 2, 5, 4, 3, 3, 3, 2, 2, 1, 0, 1, 2, 1, 0},
        {1, 3, 4, 5, 2, 2, 3, 1, 1, 0, 1, 2, 0, 1, 0},
    };
    st_suite S;
    st_suite_init(&S, ctx, st, "conv2d", 2024);
    return check_gemm_op(&S, cases, sizeof cases / sizeof cases[0], &cases[1], fd, sizeof fd / sizeof fd[0], 0);
}

vkr_status vkr_check_dense(vkr_context *ctx, vkr_selftest *st) {
    /* dense: n = batch, c = in, k = out (the rest is the 1x1 conv) */
#define D(b, i, o, bias, split) {b, i, 1, 1, o, 1, 1, 1, 1, 0, 0, 0, 0, bias, split}
    static const conv_case cases[] = {
        D(3, 13, 7, 1, 0), D(5, 127, 1000, 1, 0), D(4, 64, 32, 1, 0), D(1, 7, 3, 0, 0),
        D(32, 512, 256, 1, 0), D(5, 12, 8, 1, 2),
    };
    static const conv_case fd[] = {D(3, 5, 4, 1, 0)};
#undef D
    st_suite S;
    st_suite_init(&S, ctx, st, "dense", 77);
    return check_gemm_op(&S, cases, sizeof cases / sizeof cases[0], &cases[0], fd, sizeof fd / sizeof fd[0], 1);
}
