/* zeropad on the device vs runtime/ref/zeropad_ref.c (split over bindings too), and the
 * reference backward vs central finite differences. */
#include "ops/elem_split.h"
#include "ref/zeropad_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    vkr_pad_shape p;
    int split;
} pad_case;

static size_t pad_in(const vkr_pad_shape *p) { return (size_t)p->n * p->c * p->h * p->w; }
static size_t pad_out(const vkr_pad_shape *p) {
    return (size_t)p->n * p->c * (p->h + p->pad_t + p->pad_b) * (p->w + p->pad_l + p->pad_r);
}
static void pad_label(char *s, size_t n, const vkr_pad_shape *p, const char *extra) {
    snprintf(s, n, "%dx%dx%dx%d p%d,%d,%d,%d%s", p->n, p->c, p->h, p->w, p->pad_t, p->pad_b, p->pad_l, p->pad_r, extra);
}

static void pad_run(st_case *c, const void *kase) {
    const pad_case *q = kase;
    const vkr_pad_shape *p = &q->p;
    size_t ni = pad_in(p), no = pad_out(p);
    double *x = st_rand(c, ni, -2, 2), *dout = st_rand(c, no, -2, 2), *out = st_doubles(c, no), *dinp = st_doubles(c, ni);
    vkr_buffer *bx = st_up(c, x, ni), *bo = st_fill(c, no, NAN), *bd = st_up(c, dout, no), *bdi = st_fill(c, ni, NAN);
    uint32_t nd1 = 0, nd2 = 0;
    if (q->split) st_force_elem_split(c, 3, no / ((size_t)p->n * p->c));
    ST_RUN(c, &nd1, k, vkr_zeropad_forward(k, p, bo, bx));
    ST_RUN(c, &nd2, k, vkr_zeropad_backward(k, p, bdi, bd));
    vkr__elem_force_chunk_floats(0);
    if (c->s) return;
    vkr_ref_zeropad_forward(out, x, p);
    vkr_ref_zeropad_backward(dinp, dout, p);
    char shape[80];
    pad_label(shape, sizeof shape, p, q->split ? " split" : "");
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, no, 0, &fe);
    st_report(c, "forward", shape, fe, TOL_ZEROPAD);
    st_cmp(c, bdi, dinp, ni, 0, &be);
    st_report(c, "backward", shape, be, TOL_ZEROPAD);
    if (q->split) {
        st_expect_split(c, "forward", nd1, 1);
        st_expect_split(c, "backward", nd2, 1);
    }
}

static void pad_f(void *ud, const double *x, double *out) { vkr_ref_zeropad_forward(out, x, ud); }

static void pad_fd(st_case *c, const void *kase) {
    const vkr_pad_shape *p = kase;
    size_t ni = pad_in(p), no = pad_out(p);
    double *x = st_rand(c, ni, -2, 2), *r = st_rand(c, no, -1, 1), *g = st_doubles(c, ni);
    if (c->s) return;
    vkr_ref_zeropad_backward(g, r, p);
    st_err e = {0, 0};
    st_fd(c, pad_f, (void *)p, x, ni, no, r, g, (int)ni, FD_H_PIECEWISE, &e);
    char shape[64];
    pad_label(shape, sizeof shape, p, "");
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_zeropad(vkr_context *ctx, vkr_selftest *st) {
    static const pad_case cases[] = {
        {{1, 3, 5, 4, 1, 1, 1, 1}, 0},   {{3, 7, 6, 9, 0, 2, 3, 1}, 0},   {{1, 1, 1, 1, 2, 0, 0, 3}, 0},
        {{1, 127, 4, 4, 1, 1, 1, 1}, 0}, {{3, 13, 7, 5, 3, 3, 0, 0}, 0},  {{1, 3, 8, 8, 0, 0, 0, 0}, 0},
        {{3, 3, 224, 17, 3, 3, 3, 3}, 0}, {{3, 13, 9, 7, 1, 1, 1, 1}, 1},
    };
    static const vkr_pad_shape fd[] = {{1, 2, 3, 4, 1, 2, 0, 1}, {2, 1, 5, 2, 0, 0, 2, 2}};
    st_suite S;
    st_suite_init(&S, ctx, st, "zeropad", 13);
    vkr_status s = ST_EACH(&S, cases, pad_run);
    return s ? s : ST_EACH(&S, fd, pad_fd);
}
