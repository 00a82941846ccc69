/* concat on the device vs runtime/ref/concat_ref.c (both, one or the other gradient; split by
 * images and inside images), and the reference backward vs central finite differences. */
#include "ops/elem_split.h"
#include "ref/concat_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    int n, ca, cb, hw;
    int which; /* backward: 0 both gradients, 1 da only, 2 db only */
    int split; /* 1: bindings of ~3 images; 2: of 100 floats, inside an image */
} concat_case;

static void concat_run(st_case *c, const void *kase) {
    const concat_case *q = kase;
    int n = q->n, ca = q->ca, cb = q->cb, hw = q->hw;
    size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, no = na + nb;
    double *xa = st_rand(c, na, -2, 2), *xb = st_rand(c, nb, -2, 2), *dout = st_rand(c, no, -2, 2);
    double *out = st_doubles(c, no), *da = st_doubles(c, na), *db = st_doubles(c, nb);
    vkr_buffer *ba = st_up(c, xa, na), *bb = st_up(c, xb, nb), *bo = st_fill(c, no, NAN), *bd = st_up(c, dout, no);
    vkr_buffer *bda = q->which != 2 ? st_fill(c, na, NAN) : NULL, *bdb = q->which != 1 ? st_fill(c, nb, NAN) : NULL;
    uint32_t nd1 = 0, nd2 = 0;
    if (q->split == 1) st_force_elem_split(c, 3, (uint64_t)(ca + cb) * hw);
    if (q->split == 2) vkr__elem_force_chunk_floats(100);
    ST_RUN(c, &nd1, k, vkr_concat_forward(k, n, ca, cb, hw, bo, ba, bb));
    ST_RUN(c, &nd2, k, vkr_concat_backward(k, n, ca, cb, hw, bda, bdb, bd));
    vkr__elem_force_chunk_floats(0);
    if (c->s) return;
    vkr_ref_concat_forward(n, ca, cb, hw, out, xa, xb);
    vkr_ref_concat_backward(n, ca, cb, hw, bda ? da : NULL, bdb ? db : NULL, dout);
    char shape[80];
    snprintf(shape, sizeof shape, "n%d ca%d cb%d hw%d%s%s", n, ca, cb, hw,
             q->split == 1 ? " split" : q->split == 2 ? " split-image" : "",
             q->which == 0 ? "" : q->which == 1 ? " da" : " db");
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, no, 0, &fe);
    st_report(c, "forward", shape, fe, TOL_CONCAT);
    if (bda) st_cmp(c, bda, da, na, 0, &be);
    if (bdb) st_cmp(c, bdb, db, nb, 0, &be);
    st_report(c, "backward", shape, be, TOL_CONCAT);
    if (q->split) {
        st_expect_split(c, "forward", nd1, 2);
        st_expect_split(c, "backward", nd2, 1);
    }
}

typedef struct {
    int n, ca, cb, hw;
    const double *other;
    int which; /* x is a (0) or b (1) */
} concat_ud;
static void concat_f(void *ud, const double *x, double *out) {
    concat_ud *u = ud;
    if (u->which == 0) vkr_ref_concat_forward(u->n, u->ca, u->cb, u->hw, out, x, u->other);
    else vkr_ref_concat_forward(u->n, u->ca, u->cb, u->hw, out, u->other, x);
}

static void concat_fd(st_case *c, const void *kase) {
    const concat_case *q = kase;
    int n = q->n, ca = q->ca, cb = q->cb, hw = q->hw;
    size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, no = na + nb;
    double *xa = st_rand(c, na, -2, 2), *xb = st_rand(c, nb, -2, 2), *r = st_rand(c, no, -1, 1);
    double *ga = st_doubles(c, na), *gb = st_doubles(c, nb);
    if (c->s) return;
    vkr_ref_concat_backward(n, ca, cb, hw, ga, gb, r);
    concat_ud ua = {n, ca, cb, hw, xb, 0}, ub = {n, ca, cb, hw, xa, 1};
    st_err e = {0, 0};
    st_fd(c, concat_f, &ua, xa, na, no, r, ga, (int)na, FD_H_PIECEWISE, &e);
    st_fd(c, concat_f, &ub, xb, nb, no, r, gb, (int)nb, FD_H_PIECEWISE, &e);
    char shape[64];
    snprintf(shape, sizeof shape, "n%d ca%d cb%d hw%d", n, ca, cb, hw);
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_concat(vkr_context *ctx, vkr_selftest *st) {
    /* n, ca, cb, hw, which, split */
    static const concat_case cases[] = {
        {1, 1, 1, 1, 0, 0},  {3, 3, 7, 20, 1, 0}, {1, 13, 127, 9, 2, 0}, {3, 127, 1, 49, 0, 0},
        {1, 64, 64, 3, 1, 0}, {3, 7, 13, 35, 2, 0}, {7, 1, 5, 13, 0, 1} /* split by images */,
        {2, 5, 3, 37, 0, 2} /* split inside images */,
    };
    static const concat_case fd[] = {{1, 2, 3, 4, 0, 0}, {2, 1, 2, 5, 0, 0}};
    st_suite S;
    st_suite_init(&S, ctx, st, "concat", 16);
    vkr_status s = ST_EACH(&S, cases, concat_run);
    return s ? s : ST_EACH(&S, fd, concat_fd);
}
