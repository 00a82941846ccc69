/* Global average pooling on the device vs runtime/ref/gap_ref.c (both kernels: per-invocation
 * sums for small planes, workgroup trees for large ones; chunked bindings with unaligned
 * sub-range offsets), and the reference backward vs central finite differences. */
#include "ops/op_util.h"
#include "ref/gap_ref.h"
#include "selftest/harness.h"

#include <stdio.h>

typedef struct {
    int n, c, hw;
    uint64_t chunk; /* > 0: chunk limit in floats (vkr__bn_test_overrides) */
} gap_case;

static vkr_status gap_record(vkr_cmd *k, const gap_case *q, vkr_buffer *out, vkr_buffer *x, vkr_buffer *dx,
                             vkr_buffer *dy) {
    vkr_status s = vkr_gap_forward(k, q->n, q->c, q->hw, out, x);
    return s ? s : vkr_gap_backward(k, q->n, q->c, q->hw, dx, dy);
}

static void gap_run(st_case *c, const void *kase) {
    const gap_case *q = kase;
    size_t planes = (size_t)q->n * q->c, total = planes * q->hw;
    float *x = st_randf(c, total, -1, 3), *dy = st_randf(c, planes, -1, 1);
    double *xd = st_to_double(c, x, total), *dyd = st_to_double(c, dy, planes);
    double *out = st_doubles(c, planes), *dx = st_doubles(c, total);
    /* outputs start as stale inputs */
    vkr_buffer *bx = st_upf(c, x, total), *bdy = st_upf(c, dy, planes), *bout = st_upf(c, dy, planes),
               *bdx = st_upf(c, x, total);
    vkr__bn_test_overrides(q->chunk, 0, 0);
    ST_RUN(c, NULL, k, gap_record(k, q, bout, bx, bdx, bdy));
    vkr__bn_test_overrides(0, 0, 0);
    if (c->s) return;
    vkr_ref_gap_forward(q->n, q->c, q->hw, out, xd);
    vkr_ref_gap_backward(q->n, q->c, q->hw, dx, dyd);
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bout, out, planes, TOL_GAP_FLOOR, &fe); /* a mean's rounding is relative to the data */
    st_cmp(c, bdx, dx, total, 0, &be);
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%d%s", q->n, q->c, q->hw, q->chunk ? " chunked" : "");
    st_report(c, "forward", label, fe, TOL_GAP_FWD);
    st_report(c, "backward", label, be, TOL_GAP_BWD);
}

static void gap_f(void *ud, const double *x, double *out) {
    const gap_case *q = ud;
    vkr_ref_gap_forward(q->n, q->c, q->hw, out, x);
}

static void gap_fd(st_case *c, const void *kase) {
    const gap_case *q = kase;
    size_t planes = (size_t)q->n * q->c, total = planes * q->hw;
    double *x = st_rand(c, total, -1, 1), *r = st_rand(c, planes, -1, 1), *an = st_doubles(c, total);
    if (c->s) return;
    vkr_ref_gap_backward(q->n, q->c, q->hw, an, r);
    st_err e = {0, 0};
    st_fd(c, gap_f, (void *)q, x, total, planes, r, an, (int)total, FD_H_SMOOTH, &e);
    char label[32];
    snprintf(label, sizeof label, "%dx%dx%d", q->n, q->c, q->hw);
    st_report(c, ST_FD, label, e, TOL_FD);
}

vkr_status vkr_check_gap(vkr_context *ctx, vkr_selftest *st) {
    static const gap_case cases[] = {
        {1, 1, 1, 0},       {3, 127, 1, 0},  {3, 7, 49, 0},    {1, 13, 15, 0},   {2, 3, 256, 0},
        {2, 3, 257, 0},     {3, 5, 3136, 0}, {1, 3, 12544, 0}, {3, 7, 49, 1000}, {2, 3, 300, 700},
        {3, 5, 13, 100}, /* chunks of 7 planes: unaligned sub-range offsets */
    };
    static const gap_case fd[] = {{2, 3, 5, 0}};
    st_suite S;
    st_suite_init(&S, ctx, st, "gap", 5);
    vkr_status s = ST_EACH(&S, cases, gap_run);
    return s ? s : ST_EACH(&S, fd, gap_fd);
}
