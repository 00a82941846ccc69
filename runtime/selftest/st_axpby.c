/* axpby on the device vs runtime/ref/axpby_ref.c. */
#include "ref/axpby_ref.h"
#include "selftest/harness.h"

#include <stdio.h>

/* the scalars vary with the size (a shader that ignored one would fail): y = a*x + b*y */
typedef struct {
    uint64_t n;
    float a, b;
} axpby_case;

static void axpby_run(st_case *c, const void *kase) {
    const axpby_case *q = kase;
    double *x = st_rand(c, q->n, -2, 2), *y = st_rand(c, q->n, -2, 2);
    vkr_buffer *bx = st_up(c, x, q->n), *by = st_up(c, y, q->n);
    ST_RUN(c, NULL, k, vkr_axpby(k, q->n, q->a, bx, q->b, by));
    if (c->s) return;
    vkr_ref_axpby(q->n, q->a, x, q->b, y);
    st_err e = {0, 0};
    st_cmp(c, by, y, q->n, 0, &e);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%llu a=%g b=%g", (unsigned long long)q->n, q->a, q->b);
    st_report(c, "forward", shape, e, TOL_AXPBY);
}

vkr_status vkr_check_axpby(vkr_context *ctx, vkr_selftest *st) {
    static const axpby_case cases[] = {{1, 1.5f, -0.25f}, {7, -0.75f, 1.0f}, {255, 0.0f, 2.0f},
                                       {256, 3.0f, 0.0f}, {257, 1.0f, 1.0f}, {100003, -2.0f, 0.5f}};
    st_suite S;
    st_suite_init(&S, ctx, st, "axpby", 1);
    return ST_EACH(&S, cases, axpby_run);
}
