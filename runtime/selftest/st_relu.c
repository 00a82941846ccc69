/* relu on the device vs runtime/ref/relu_ref.c (in place, split over bindings, and a grid
 * over 65535 workgroups), and the reference backward vs central finite differences. */
#include "ops/elem_split.h"
#include "ref/relu_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    uint64_t n;
    int inplace; /* backward writes dinp over dout */
    int split;   /* bindings of 1000 floats: the split path */
} relu_case;

static void relu_run(st_case *c, const void *kase) {
    const relu_case *q = kase;
    uint64_t n = q->n;
    double *x = st_rand(c, n, -2, 2), *dout = st_rand(c, n, -2, 2), *out = st_doubles(c, n), *dinp = st_doubles(c, n);
    vkr_buffer *bx = st_up(c, x, n), *bo = st_fill(c, n, NAN), *bd = st_up(c, dout, n);
    vkr_buffer *bdi = q->inplace ? bd : st_fill(c, n, NAN);
    uint32_t nd1 = 0, nd2 = 0;
    if (q->split) vkr__elem_force_chunk_floats(1000);
    ST_RUN(c, &nd1, k, vkr_relu_forward(k, n, bo, bx));
    ST_RUN(c, &nd2, k, vkr_relu_backward(k, n, bdi, bd, bo));
    vkr__elem_force_chunk_floats(0);
    if (c->s) return;
    vkr_ref_relu_forward(n, out, x);
    vkr_ref_relu_backward(n, dinp, dout, out);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%llu%s%s", (unsigned long long)n, q->split ? " split" : "", q->inplace ? " inplace" : "");
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, n, 0, &fe);
    st_report(c, "forward", shape, fe, TOL_RELU_FWD);
    st_cmp(c, bdi, dinp, n, 0, &be);
    st_report(c, "backward", shape, be, TOL_RELU_BWD);
    if (q->split) {
        st_expect_split(c, "forward", nd1, 1);
        st_expect_split(c, "backward", nd2, 1);
    }
}

/* Hash values in [-2, 2) (a large case without the RNG's cost). */
static float big_val(uint64_t i) {
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(i >> 13);
    h *= 0x85EBCA6Bu;
    return (float)((int32_t)(h >> 8) - (1 << 23)) / (float)(1 << 22);
}

/* Over 65535 workgroups of 256: the 2-D grid (vkr_grid_1d / vkr_flat_index) with gy > 1.  In
 * place, data from a hash (cheap under ASan), compared block by block. */
static void relu_big(st_case *c, const void *unused) {
    (void)unused;
    const uint64_t n = 65535ull * 256 + 4099, blk = 4096;
    float *f = st_alloc(c, n * sizeof(float));
    double *xd = st_doubles(c, blk), *rd = st_doubles(c, blk);
    if (c->s) return;
    for (uint64_t i = 0; i < n; i++) f[i] = big_val(i);
    vkr_buffer *b = st_upf(c, f, n);
    ST_RUN(c, NULL, k, vkr_relu_forward(k, n, b, b));
    if (!c->s) c->s = vkr_buffer_download(b, 0, f, n * sizeof(float));
    if (c->s) return;
    st_err e = {0, 0};
    for (uint64_t i0 = 0; i0 < n; i0 += blk) {
        size_t m = n - i0 < blk ? (size_t)(n - i0) : blk;
        for (size_t j = 0; j < m; j++) xd[j] = big_val(i0 + j);
        vkr_ref_relu_forward(m, rd, xd);
        st_cmp_host(f + i0, rd, m, 0, &e);
    }
    st_report(c, "forward", "n=16.8M inplace (2-D grid)", e, TOL_RELU_FWD);
}

static void relu_f(void *ud, const double *x, double *out) { vkr_ref_relu_forward(*(const uint64_t *)ud, out, x); }

/* reference backward vs finite differences, away from the kink */
static void relu_fd(st_case *c, const void *kase) {
    uint64_t n = *(const uint64_t *)kase;
    double *x = st_rand_away_from_zero(c, n), *r = st_rand(c, n, -1, 1), *out = st_doubles(c, n), *g = st_doubles(c, n);
    if (c->s) return;
    vkr_ref_relu_forward(n, out, x);
    vkr_ref_relu_backward(n, g, r, out);
    st_err e = {0, 0};
    st_fd(c, relu_f, &n, x, n, n, r, g, (int)n, FD_H_PIECEWISE, &e);
    char shape[32];
    snprintf(shape, sizeof shape, "n=%llu", (unsigned long long)n);
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_relu(vkr_context *ctx, vkr_selftest *st) {
    static const relu_case cases[] = {{1, 0, 0},   {7, 1, 0},      {255, 0, 0}, {256, 1, 0},
                                      {257, 0, 0}, {100003, 1, 0}, {2503, 0, 1}};
    static const uint64_t fd[] = {1, 37, 200};
    st_suite S;
    st_suite_init(&S, ctx, st, "relu", 11);
    vkr_status s;
    if ((s = ST_EACH(&S, cases, relu_run)) || (s = ST_ONCE(&S, relu_big, NULL))) return s;
    return ST_EACH(&S, fd, relu_fd);
}
