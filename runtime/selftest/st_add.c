/* add on the device vs runtime/ref/add_ref.c (both, one or the other gradient; split over
 * bindings), and the reference backward vs central finite differences. */
#include "ops/elem_split.h"
#include "ref/add_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    uint64_t n;
    int which; /* backward: 0 both gradients, 1 da only, 2 db only */
    int split; /* bindings of 1000 floats: the split path */
} add_case;

static void add_run(st_case *c, const void *kase) {
    const add_case *q = kase;
    uint64_t n = q->n;
    double *x = st_rand(c, n, -2, 2), *y = st_rand(c, n, -2, 2), *dout = st_rand(c, n, -2, 2);
    double *out = st_doubles(c, n), *da = st_doubles(c, n), *db = st_doubles(c, n);
    vkr_buffer *bx = st_up(c, x, n), *by = st_up(c, y, n), *bo = st_fill(c, n, NAN), *bd = st_up(c, dout, n);
    vkr_buffer *bda = q->which != 2 ? st_fill(c, n, NAN) : NULL, *bdb = q->which != 1 ? st_fill(c, n, NAN) : NULL;
    uint32_t nd1 = 0, nd2 = 0;
    if (q->split) vkr__elem_force_chunk_floats(1000);
    ST_RUN(c, &nd1, k, vkr_add_forward(k, n, bo, bx, by));
    ST_RUN(c, &nd2, k, vkr_add_backward(k, n, bda, bdb, bd));
    vkr__elem_force_chunk_floats(0);
    if (c->s) return;
    vkr_ref_add_forward(n, out, x, y);
    vkr_ref_add_backward(n, bda ? da : NULL, bdb ? db : NULL, dout);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%llu%s%s", (unsigned long long)n, q->split ? " split" : "",
             q->which == 0 ? "" : q->which == 1 ? " da" : " db");
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, n, 0, &fe);
    st_report(c, "forward", shape, fe, TOL_ADD_FWD);
    if (bda) st_cmp(c, bda, da, n, 0, &be);
    if (bdb) st_cmp(c, bdb, db, n, 0, &be);
    st_report(c, "backward", shape, be, TOL_ADD_BWD);
    if (q->split) {
        st_expect_split(c, "forward", nd1, 1);
        st_expect_split(c, "backward", nd2, 1);
    }
}

typedef struct {
    uint64_t n;
    const double *b;
} add_ud;
static void add_f(void *ud, const double *x, double *out) {
    add_ud *u = ud;
    vkr_ref_add_forward(u->n, out, x, u->b);
}

static void add_fd(st_case *c, const void *kase) {
    uint64_t n = *(const uint64_t *)kase;
    double *x = st_rand(c, n, -2, 2), *y = st_rand(c, n, -2, 2), *r = st_rand(c, n, -1, 1);
    double *ga = st_doubles(c, n), *gb = st_doubles(c, n);
    if (c->s) return;
    vkr_ref_add_backward(n, ga, gb, r);
    add_ud ua = {n, y}, ub = {n, x}; /* a + b is symmetric: d/db checked by swapping */
    st_err e = {0, 0};
    st_fd(c, add_f, &ua, x, n, n, r, ga, (int)n, FD_H_PIECEWISE, &e);
    st_fd(c, add_f, &ub, y, n, n, r, gb, (int)n, FD_H_PIECEWISE, &e);
    char shape[32];
    snprintf(shape, sizeof shape, "n=%llu", (unsigned long long)n);
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_add(vkr_context *ctx, vkr_selftest *st) {
    static const add_case cases[] = {{1, 0, 0},   {7, 1, 0},      {255, 2, 0}, {256, 0, 0},
                                     {257, 1, 0}, {100003, 2, 0}, {2503, 0, 1}};
    static const uint64_t fd[] = {3, 50};
    st_suite S;
    st_suite_init(&S, ctx, st, "add", 12);
    vkr_status s = ST_EACH(&S, cases, add_run);
    return s ? s : ST_EACH(&S, fd, add_fd);
}
