/* maxpool and avgpool on the device vs runtime/ref/{maxpool,avgpool}_ref.c over one table of
 * pool shapes (split over bindings too), and the reference backwards vs central finite
 * differences. */
#include "ops/elem_split.h"
#include "ref/avgpool_ref.h"
#include "ref/maxpool_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    vkr_pool_shape p; /* count_include_pad set per run */
    int ties;         /* maxpool: small integers, many exact ties */
    int split;
} pool_case;

/* n c h w kh kw sh sw pt pb pl pr; ties on every other case (maxpool) */
static const pool_case k_cases[] = {
    {{1, 3, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0}, 0, 0},   /* ResNet stem 3x3/2 pad 1 */
    {{3, 7, 11, 8, 3, 3, 2, 2, 0, 0, 0, 0, 0, 0}, 1, 0},  /* 3x3/2 valid, non-square */
    {{1, 13, 8, 6, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0}, 0, 0},  /* 2x2/2 */
    {{1, 3, 5, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 1, 0},   /* 1x1/1 */
    {{3, 1, 7, 5, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0}, 0, 0},   /* 1x1/2 */
    {{3, 127, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0}, 1, 0}, /* 7x7 global-like */
    {{1, 7, 8, 10, 3, 3, 2, 2, 0, 1, 0, 1, 0, 0}, 0, 0},  /* Keras 'same' 3x3/2 on even sizes: asymmetric */
    {{3, 3, 6, 13, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0}, 1, 0},  /* Keras 'same' 3x3/1 */
    {{1, 7, 9, 7, 3, 2, 2, 1, 0, 0, 0, 0, 0, 0}, 0, 0},   /* non-square kernel and stride */
    {{1, 3, 9, 10, 3, 3, 2, 2, 2, 1, 2, 0, 0, 0}, 1, 0},  /* padding > kernel/2 */
    {{3, 13, 12, 9, 2, 2, 1, 1, 1, 0, 0, 1, 0, 0}, 0, 0}, /* 2x2/1 asymmetric */
    {{1, 1, 6, 6, 5, 5, 1, 1, 4, 4, 2, 3, 0, 0}, 1, 0},   /* pad up to kernel-1 */
    {{1, 3, 57, 41, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0}, 0, 0}, /* larger plane */
    {{2, 2, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1, 0, 0}, 1, 0},   /* stride == kernel with pad */
    {{3, 13, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0}, 1, 1},  /* split: planes 81 -> 25 */
    /* ceil_mode (torch): windows past the padded input, the last one starting inside it */
    {{1, 3, 10, 10, 3, 3, 2, 2, 0, 0, 0, 0, 0, 1}, 0, 0},  /* 5x5 instead of 4x4 */
    {{3, 5, 7, 9, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1}, 1, 0},    /* 2x2/2 on odd sizes */
    {{1, 7, 11, 8, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1}, 0, 0},   /* pad 1: overhang in W only */
    {{2, 3, 6, 13, 3, 3, 3, 3, 1, 0, 0, 2, 0, 1}, 1, 0},   /* asymmetric pad, stride 3 */
    {{1, 3, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 0, 1}, 0, 0},    /* a window starting in the bottom padding dropped */
    {{3, 13, 9, 9, 3, 3, 2, 2, 0, 0, 0, 0, 0, 1}, 1, 1},   /* ceil, split */
};
static const vkr_pool_shape k_fd[] = {
    {1, 2, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0},
    {2, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0},
    {1, 1, 6, 5, 3, 3, 1, 1, 0, 1, 2, 0, 0, 0},
    {1, 1, 5, 5, 3, 2, 2, 1, 2, 2, 1, 1, 0, 0},
    {1, 1, 7, 6, 3, 3, 2, 2, 1, 0, 1, 0, 0, 1}, /* ceil_mode */
};

static size_t pool_in(const vkr_pool_shape *p) { return (size_t)p->n * p->c * p->h * p->w; }
static size_t pool_out(const vkr_pool_shape *p) { return (size_t)p->n * p->c * vkr_pool_out_h(p) * vkr_pool_out_w(p); }
static void pool_label(char *s, size_t n, const vkr_pool_shape *p, const char *extra) {
    snprintf(s, n, "%dx%dx%dx%d k%dx%d/%d,%d p%d%d%d%d%s%s", p->n, p->c, p->h, p->w, p->kh, p->kw, p->stride_h,
             p->stride_w, p->pad_t, p->pad_b, p->pad_l, p->pad_r, p->ceil_mode ? " ceil" : "", extra);
}

/* ----------------------------------------------------------------- maxpool */

/* forward, argmax (must equal the reference's: first maximum in window order), backward */
static void maxpool_run(st_case *c, const void *kase) {
    const pool_case *q = kase;
    const vkr_pool_shape *p = &q->p;
    size_t ni = pool_in(p), no = pool_out(p);
    double *x = q->ties ? st_rand_ties(c, ni) : st_rand(c, ni, -2, 2), *dout = st_rand(c, no, -2, 2);
    double *out = st_doubles(c, no), *dinp = st_doubles(c, ni);
    int32_t *arg = st_alloc(c, no * sizeof(int32_t)), *garg = st_alloc(c, no * sizeof(int32_t));
    vkr_buffer *bx = st_up(c, x, ni), *bo = st_fill(c, no, NAN), *barg = st_fill(c, no, NAN), *bd = st_up(c, dout, no);
    vkr_buffer *bdi = st_fill(c, ni, NAN);
    uint32_t nd1 = 0, nd2 = 0;
    if (q->split) st_force_elem_split(c, 3, (uint64_t)p->h * p->w);
    ST_RUN(c, &nd1, k, vkr_maxpool_forward(k, p, bo, barg, bx));
    ST_RUN(c, &nd2, k, vkr_maxpool_backward(k, p, bdi, bd, barg));
    vkr__elem_force_chunk_floats(0);
    if (!c->s) c->s = vkr_buffer_download(barg, 0, garg, no * sizeof(int32_t));
    if (c->s) return;
    vkr_ref_maxpool_forward(out, arg, x, p);
    vkr_ref_maxpool_backward(dinp, dout, arg, p);
    char shape[96];
    pool_label(shape, sizeof shape, p, q->split ? " split" : q->ties ? " ties" : "");
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, no, 0, &fe);
    st_report(c, "forward", shape, fe, TOL_MAXPOOL_FWD);
    size_t bad = 0;
    for (size_t i = 0; i < no; i++) bad += garg[i] != arg[i];
    if (bad) {
        char s2[192];
        snprintf(s2, sizeof s2, "argmax %zu/%zu differ: %s", bad, no, shape);
        st_report_bad(c, "backward", s2, (double)bad);
    }
    st_cmp(c, bdi, dinp, ni, 0, &be);
    st_report(c, "backward", shape, be, TOL_MAXPOOL_BWD);
    if (q->split) {
        st_expect_split(c, "forward", nd1, 1);
        st_expect_split(c, "backward", nd2, 1);
    }
}

typedef struct {
    const vkr_pool_shape *p;
    int32_t *arg;
} pool_ud;
static void maxpool_f(void *ud, const double *x, double *out) {
    pool_ud *u = ud;
    vkr_ref_maxpool_forward(out, u->arg, x, u->p);
}

/* distinct values: max is differentiable there */
static void maxpool_fd(st_case *c, const void *kase) {
    const vkr_pool_shape *p = kase;
    size_t ni = pool_in(p), no = pool_out(p);
    double *x = st_rand_distinct(c, ni), *r = st_rand(c, no, -1, 1), *out = st_doubles(c, no), *g = st_doubles(c, ni);
    int32_t *arg = st_alloc(c, no * sizeof(int32_t));
    if (c->s) return;
    pool_ud ud = {p, arg};
    vkr_ref_maxpool_forward(out, arg, x, p);
    vkr_ref_maxpool_backward(g, r, arg, p);
    st_err e = {0, 0};
    st_fd(c, maxpool_f, &ud, x, ni, no, r, g, (int)ni, FD_H_PIECEWISE, &e);
    char shape[96];
    pool_label(shape, sizeof shape, p, "");
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_maxpool(vkr_context *ctx, vkr_selftest *st) {
    st_suite S;
    st_suite_init(&S, ctx, st, "maxpool", 14);
    vkr_status s = ST_EACH(&S, k_cases, maxpool_run);
    return s ? s : ST_EACH(&S, k_fd, maxpool_fd);
}

/* ----------------------------------------------------------------- avgpool */

/* both divisor modes (count_include_pad 0 and 1), errors folded into one entry per direction */
static void avgpool_run(st_case *c, const void *kase) {
    const pool_case *q = kase;
    size_t ni = pool_in(&q->p), no = pool_out(&q->p);
    st_err fe = {0, 0}, be = {0, 0};
    for (int mode = 0; mode < 2 && !c->s; mode++) {
        vkr_pool_shape p = q->p;
        p.count_include_pad = mode;
        double *x = st_rand(c, ni, -2, 2), *dout = st_rand(c, no, -2, 2), *out = st_doubles(c, no), *dinp = st_doubles(c, ni);
        vkr_buffer *bx = st_up(c, x, ni), *bo = st_fill(c, no, NAN), *bd = st_up(c, dout, no), *bdi = st_fill(c, ni, NAN);
        uint32_t nd1 = 0, nd2 = 0;
        if (q->split) st_force_elem_split(c, 3, (uint64_t)p.h * p.w);
        ST_RUN(c, &nd1, k, vkr_avgpool_forward(k, &p, bo, bx));
        ST_RUN(c, &nd2, k, vkr_avgpool_backward(k, &p, bdi, bd));
        vkr__elem_force_chunk_floats(0);
        if (c->s) return;
        vkr_ref_avgpool_forward(out, x, &p);
        vkr_ref_avgpool_backward(dinp, dout, &p);
        st_cmp(c, bo, out, no, 0, &fe);
        st_cmp(c, bdi, dinp, ni, 0, &be);
        if (q->split) {
            st_expect_split(c, "forward", nd1, 1);
            st_expect_split(c, "backward", nd2, 1);
        }
    }
    char shape[96];
    pool_label(shape, sizeof shape, &q->p, q->split ? " split" : "");
    st_report(c, "forward", shape, fe, TOL_AVGPOOL);
    st_report(c, "backward", shape, be, TOL_AVGPOOL);
}

static void avgpool_f(void *ud, const double *x, double *out) { vkr_ref_avgpool_forward(out, x, ((pool_ud *)ud)->p); }

static void avgpool_fd(st_case *c, const void *kase) {
    st_err e = {0, 0};
    for (int mode = 0; mode < 2 && !c->s; mode++) {
        vkr_pool_shape p = *(const vkr_pool_shape *)kase;
        p.count_include_pad = mode;
        size_t ni = pool_in(&p), no = pool_out(&p);
        double *x = st_rand(c, ni, -2, 2), *r = st_rand(c, no, -1, 1), *g = st_doubles(c, ni);
        if (c->s) return;
        pool_ud ud = {&p, NULL};
        vkr_ref_avgpool_backward(g, r, &p);
        st_fd(c, avgpool_f, &ud, x, ni, no, r, g, (int)ni, FD_H_PIECEWISE, &e);
    }
    char shape[96];
    pool_label(shape, sizeof shape, kase, "");
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_avgpool(vkr_context *ctx, vkr_selftest *st) {
    st_suite S;
    st_suite_init(&S, ctx, st, "avgpool", 15);
    vkr_status s = ST_EACH(&S, k_cases, avgpool_run);
    return s ? s : ST_EACH(&S, k_fd, avgpool_fd);
}
