/* The element-wise activations (clip, sigmoid, hard_sigmoid, hard_swish, swish) on the device vs
 * runtime/ref/act_ref.c (in place, split over bindings, values on and around the kinks), and the
 * reference backward vs central finite differences with samples kept away from the kinks. */
#include "ops/elem_split.h"
#include "ref/act_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    vkr_act_params a;
    uint64_t n;
    int inplace; /* forward writes over inp, backward dinp over dout */
    int split;   /* bindings of 1000 floats: the split path */
} act_case;

/* Exact kinks of mode a (at most 2). */
static int kinks(const vkr_act_params *a, double k[2]) {
    switch (a->mode) {
    case VKR_ACT_CLIP: k[0] = a->a, k[1] = a->b; return 2;
    case VKR_ACT_HARD_SIGMOID: k[0] = -a->b / a->a, k[1] = (1 - a->b) / a->a; return 2;
    case VKR_ACT_HARD_SWISH: k[0] = -3, k[1] = 3; return 2;
    default: return 0;
    }
}

/* Inputs in [-8, 8): every 16th value exactly on a kink (the forward's and the slope's
 * conventions there are checked), the rest random (floats). */
static double *act_inputs(st_case *c, const vkr_act_params *a, uint64_t n, int on_kinks) {
    double *x = st_rand(c, n, -8, 8), k[2];
    int nk = kinks(a, k);
    for (uint64_t i = 0; x && on_kinks && nk && i < n; i += 16) x[i] = (float)k[(i / 16) % (uint64_t)nk];
    return x;
}

static void act_label(char *buf, size_t sz, const act_case *q) {
    snprintf(buf, sz, "%s n=%llu%s%s", vkr_act_name(q->a.mode), (unsigned long long)q->n, q->split ? " split" : "",
             q->inplace ? " inplace" : "");
}

static void act_run(st_case *c, const void *kase) {
    const act_case *q = kase;
    uint64_t n = q->n;
    double *x = act_inputs(c, &q->a, n, 1), *dout = st_rand(c, n, -2, 2), *out = st_doubles(c, n);
    double *dinp = st_doubles(c, n);
    vkr_buffer *bx = st_up(c, x, n), *bd = st_up(c, dout, n), *bx2 = st_up(c, x, n);
    vkr_buffer *bo = q->inplace ? bx2 : st_fill(c, n, NAN), *bdi = q->inplace ? bd : st_fill(c, n, NAN);
    uint32_t nd1 = 0, nd2 = 0;
    if (q->split) vkr__elem_force_chunk_floats(1000);
    ST_RUN(c, &nd1, k, vkr_act_forward(k, &q->a, n, bo, bx2));
    ST_RUN(c, &nd2, k, vkr_act_backward(k, &q->a, n, bdi, bd, bx));
    vkr__elem_force_chunk_floats(0);
    if (c->s) return;
    vkr_ref_act_forward(&q->a, n, out, x);
    vkr_ref_act_backward(&q->a, n, dinp, dout, x);
    char shape[96];
    act_label(shape, sizeof shape, q);
    int exact = q->a.mode == VKR_ACT_CLIP;
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bo, out, n, 0, &fe);
    st_report(c, "forward", shape, fe, exact ? TOL_ACT_EXACT : TOL_ACT_FWD);
    st_cmp(c, bdi, dinp, n, 0, &be);
    st_report(c, "backward", shape, be, exact ? TOL_ACT_EXACT : TOL_ACT_BWD);
    if (q->split) {
        st_expect_split(c, "forward", nd1, 1);
        st_expect_split(c, "backward", nd2, 1);
    }
}

typedef struct {
    vkr_act_params a;
    uint64_t n;
} act_fd_ud;

static void act_f(void *ud, const double *x, double *out) {
    const act_fd_ud *u = ud;
    vkr_ref_act_forward(&u->a, u->n, out, x);
}

/* reference backward vs finite differences; every input at least 0.05 from a kink (h = 1e-5) */
static void act_fd(st_case *c, const void *kase) {
    const act_case *q = kase;
    uint64_t n = q->n;
    double *x = act_inputs(c, &q->a, n, 0), *r = st_rand(c, n, -1, 1), *g = st_doubles(c, n), k[2];
    if (c->s) return;
    int nk = kinks(&q->a, k);
    for (uint64_t i = 0; i < n; i++)
        for (int j = 0; j < nk; j++)
            if (fabs(x[i] - k[j]) < 0.05) x[i] = k[j] + (x[i] < k[j] ? -0.05 : 0.05);
    vkr_ref_act_backward(&q->a, n, g, r, x);
    act_fd_ud u = {q->a, n};
    st_err e = {0, 0};
    st_fd(c, act_f, &u, x, n, n, r, g, (int)n, FD_H_SMOOTH, &e);
    char shape[96];
    act_label(shape, sizeof shape, q);
    st_report(c, ST_FD, shape, e, TOL_FD);
}

#define CLIP6 {VKR_ACT_CLIP, 0.0f, 6.0f}
#define CLIPN {VKR_ACT_CLIP, -1.5f, 2.25f}
#define SIG {VKR_ACT_SIGMOID, 0, 0}
#define HSIG {VKR_ACT_HARD_SIGMOID, 1.0f / 6.0f, 0.5f}
#define HSIG2 {VKR_ACT_HARD_SIGMOID, 0.2f, 0.5f}
#define HSW {VKR_ACT_HARD_SWISH, 0, 0}
#define SW {VKR_ACT_SWISH, 0, 0}

vkr_status vkr_check_act(vkr_context *ctx, vkr_selftest *st) {
    static const act_case cases[] = {
        {CLIP6, 1, 0, 0},   {CLIP6, 257, 1, 0},   {CLIPN, 100003, 0, 0}, {CLIP6, 2503, 0, 1},
        {SIG, 7, 0, 0},     {SIG, 100003, 1, 0},  {SIG, 2503, 1, 1},     {HSIG, 255, 0, 0},
        {HSIG2, 4099, 1, 0}, {HSIG, 2503, 0, 1},  {HSW, 256, 0, 0},      {HSW, 100003, 1, 0},
        {HSW, 2503, 0, 1},  {SW, 1, 0, 0},        {SW, 65537, 1, 0},     {SW, 2503, 1, 1},
    };
    static const act_case fd[] = {{CLIP6, 200, 0, 0}, {CLIPN, 200, 0, 0}, {SIG, 200, 0, 0}, {HSIG, 200, 0, 0},
                                  {HSIG2, 200, 0, 0}, {HSW, 200, 0, 0},  {SW, 200, 0, 0}};
    st_suite S;
    st_suite_init(&S, ctx, st, "act", 14);
    vkr_status s = ST_EACH(&S, cases, act_run);
    return s ? s : ST_EACH(&S, fd, act_fd);
}
