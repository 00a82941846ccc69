/* multiply on the device vs runtime/ref/multiply_ref.c: same shapes (chunked element-wise) and
 * the [N, C] broadcast over HW (both reduction kernels of db: per-invocation sums for planes of
 * <= 256, workgroup trees above; chunked bindings with unaligned offsets; da written over dout),
 * and the reference backward vs central finite differences in a and b together. */
#include "ops/elem_split.h"
#include "ref/multiply_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    int n, c, hw, bcast;
    uint64_t chunk; /* > 0: chunk limit in floats (vkr__bn_test_overrides / element split) */
    int inplace;    /* da over dout */
} mul_case;

static vkr_status mul_record(vkr_cmd *k, const mul_case *q, int bhw, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b,
                             vkr_buffer *da, vkr_buffer *db, vkr_buffer *dout) {
    vkr_status s = vkr_multiply_forward(k, q->n, q->c, q->hw, bhw, out, a, b);
    return s ? s : vkr_multiply_backward(k, q->n, q->c, q->hw, bhw, da, db, dout, a, b);
}

static void mul_run(st_case *c, const void *kase) {
    const mul_case *q = kase;
    int bhw = q->bcast ? 1 : q->hw;
    size_t planes = (size_t)q->n * q->c, ne = planes * q->hw, nb = planes * bhw;
    double *a = st_rand(c, ne, -2, 2), *b = st_rand(c, nb, -2, 2), *dout = st_rand(c, ne, -1, 1);
    double *out = st_doubles(c, ne), *da = st_doubles(c, ne), *db = st_doubles(c, nb);
    vkr_buffer *ba = st_up(c, a, ne), *bb = st_up(c, b, nb), *bd = st_up(c, dout, ne), *bo = st_fill(c, ne, NAN);
    vkr_buffer *bda = q->inplace ? bd : st_fill(c, ne, NAN), *bdb = st_fill(c, nb, NAN);
    vkr__bn_test_overrides(q->chunk, 0, 0);
    if (q->chunk) vkr__elem_force_chunk_floats(q->chunk);
    uint32_t nd = 0;
    ST_RUN(c, &nd, k, mul_record(k, q, bhw, bo, ba, bb, bda, bdb, bd));
    vkr__bn_test_overrides(0, 0, 0);
    vkr__elem_force_chunk_floats(0);
    if (c->s) return;
    vkr_ref_multiply_forward(q->n, q->c, q->hw, bhw, out, a, b);
    vkr_ref_multiply_backward(q->n, q->c, q->hw, bhw, da, db, dout, a, b);
    double floor = 0; /* db of the broadcast: its rounding is relative to the sum of |dout a| of a plane */
    for (size_t p = 0; q->bcast && p < planes; p++) {
        double sum = 0;
        for (int i = 0; i < q->hw; i++) sum += fabs(dout[p * q->hw + i] * a[p * q->hw + i]);
        floor = sum > floor ? sum : floor;
    }
    st_err fe = {0, 0}, ae = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, ne, 0, &fe);
    st_cmp(c, bda, da, ne, 0, &ae);
    st_cmp(c, bdb, db, nb, floor, &be);
    char label[80];
    snprintf(label, sizeof label, "%dx%dx%d %s%s%s", q->n, q->c, q->hw, q->bcast ? "bcast" : "same",
             q->chunk ? " chunked" : "", q->inplace ? " inplace" : "");
    st_report(c, "forward", label, fe, TOL_MUL);
    st_report(c, "backward da", label, ae, TOL_MUL);
    st_report(c, "backward db", label, be, q->bcast ? TOL_MUL_REDUCE : TOL_MUL);
    if (q->chunk) st_expect_split(c, "forward+backward", nd, 3);
}

typedef struct {
    const mul_case *q;
    size_t ne;
} mul_fd_ud;

static void mul_f(void *ud, const double *x, double *out) {
    const mul_fd_ud *u = ud;
    vkr_ref_multiply_forward(u->q->n, u->q->c, u->q->hw, u->q->bcast ? 1 : u->q->hw, out, x, x + u->ne);
}

static void mul_fd(st_case *c, const void *kase) {
    const mul_case *q = kase;
    int bhw = q->bcast ? 1 : q->hw;
    size_t planes = (size_t)q->n * q->c, ne = planes * q->hw, nb = planes * bhw;
    double *x = st_rand(c, ne + nb, -2, 2), *r = st_rand(c, ne, -1, 1), *an = st_doubles(c, ne + nb);
    if (c->s) return;
    vkr_ref_multiply_backward(q->n, q->c, q->hw, bhw, an, an + ne, r, x, x + ne);
    mul_fd_ud u = {q, ne};
    st_err e = {0, 0};
    st_fd(c, mul_f, &u, x, ne + nb, ne, r, an, (int)(ne + nb), FD_H_LINEAR, &e);
    char label[48];
    snprintf(label, sizeof label, "%dx%dx%d %s", q->n, q->c, q->hw, q->bcast ? "bcast" : "same");
    st_report(c, ST_FD, label, e, TOL_FD);
}

vkr_status vkr_check_multiply(vkr_context *ctx, vkr_selftest *st) {
    static const mul_case cases[] = {
        {1, 1, 1, 0, 0, 0},   {3, 5, 7, 0, 0, 1},     {2, 3, 1001, 0, 0, 0},  {3, 7, 130, 0, 1000, 0},
        {1, 1, 1, 1, 0, 0},   {3, 7, 49, 1, 0, 1},    {2, 13, 256, 1, 0, 0},  {2, 3, 257, 1, 0, 1},
        {3, 5, 3136, 1, 0, 0}, {1, 3, 12544, 1, 0, 0}, {3, 5, 13, 1, 100, 0}, {2, 3, 300, 1, 700, 1},
        {4, 9, 1, 1, 0, 0}, /* 1x1 planes: the SE vector times itself-shaped input */
    };
    static const mul_case fd[] = {{2, 3, 5, 0, 0, 0}, {2, 3, 5, 1, 0, 0}};
    st_suite S;
    st_suite_init(&S, ctx, st, "multiply", 21);
    vkr_status s = ST_EACH(&S, cases, mul_run);
    return s ? s : ST_EACH(&S, fd, mul_fd);
}
