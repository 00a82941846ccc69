/* sgd and adam on the device vs runtime/ref/{sgd,adam}_ref.c: several consecutive steps over
 * every scalar parameter, chunked, and argument checks. */
#include "ops/op_util.h"
#include "ref/adam_ref.h"
#include "ref/sgd_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

#define OPT_STEPS 5

typedef struct {
    int adam;
    vkr_optim_params o;
    int use_velocity;
    uint64_t n, chunk;
    const char *label;
    double pscale;
} optim_case;

/* Runs OPT_STEPS consecutive steps on the device and in the reference with fresh
 * random gradients in [-1, 1) each step (params start in [-pscale, pscale), state
 * at 0); after every step compares param, the total displacement param - param0
 * (so an error in a small update is not hidden by the size of param; relative to
 * max(max |displacement|, step * lr)) and the state (velocity, or m and v).  The
 * float rounding of param (~ulp(param) per step) bounds how well the device can
 * match the displacement; Adam's updates are ~lr whatever the gradient, so its
 * params start small to keep that bound well below the tolerance at lr = 1e-3. */
static void optim_run(st_case *c, const void *kase) {
    const optim_case *q = kase;
    uint64_t n = q->n;
    vkr_optim_params o = q->o;
    size_t nst = q->adam ? 2 : q->use_velocity ? 1 : 0;
    float *p0 = st_randf(c, n, -q->pscale, q->pscale), *g = st_alloc(c, n * 4), *got = st_alloc(c, n * 4);
    double *pd = st_to_double(c, p0, n), *gd = st_doubles(c, n), *sd[2] = {st_doubles(c, n), st_doubles(c, n)};
    double *dg = st_doubles(c, n), *dr = st_doubles(c, n);
    vkr_buffer *bp = st_upf(c, p0, n), *bg = st_fill(c, n, 0), *bs[2] = {NULL, NULL};
    for (size_t j = 0; j < nst; j++) bs[j] = st_fill(c, n, 0);
    st_err e = {0, 0};
    for (uint32_t step = 1; step <= OPT_STEPS && !c->s; step++) {
        vkr_rng_fill(c->rng, g, n, -1, 1);
        for (uint64_t i = 0; i < n; i++) gd[i] = g[i];
        o.step = step;
        c->s = vkr_buffer_upload(bg, 0, g, n * 4);
        vkr__loss_force_chunk(q->chunk);
        ST_RUN(c, NULL, k, q->adam ? vkr_adam_step(k, n, &o, bp, bg, bs[0], bs[1]) : vkr_sgd_step(k, n, &o, bp, bg, bs[0]));
        vkr__loss_force_chunk(0);
        if (!c->s) c->s = vkr_buffer_download(bp, 0, got, n * 4);
        if (c->s) break;
        if (q->adam) vkr_ref_adam_step(n, &o, pd, gd, sd[0], sd[1]);
        else vkr_ref_sgd_step(n, &o, pd, gd, q->use_velocity ? sd[0] : NULL);
        st_cmp_host(got, pd, n, 0, &e);
        double dmax = step * (double)o.lr; /* floor: a chance cancellation must not shrink the scale */
        for (uint64_t i = 0; i < n; i++) dg[i] = (double)got[i] - p0[i], dr[i] = pd[i] - p0[i];
        st_cmp_d(dg, dr, n, dmax, &e);
        for (size_t j = 0; j < nst; j++) st_cmp(c, bs[j], sd[j], n, 0, &e);
        if (e.rel != e.rel) break;
    }
    char shape[96], cl[32] = "";
    if (q->chunk) snprintf(cl, sizeof cl, " chunk%llu", (unsigned long long)q->chunk);
    snprintf(shape, sizeof shape, "%s n=%llu%s", q->label, (unsigned long long)n, cl);
    st_report(c, "step", shape, e, TOL_OPTIM_STEP);
}

/* momentum without a velocity buffer, n = 0, buffers too small: VKR_ERR_INVALID */
static void sgd_bad_args(st_case *c, const void *unused) {
    (void)unused;
    vkr_buffer *b = st_fill(c, 16, 0);
    vkr_cmd *cmd = st_begin(c);
    if (!cmd) return;
    vkr_optim_params o = {.lr = 0.1f, .momentum = 0.9f};
    int bad = (vkr_sgd_step(cmd, 16, &o, b, b, NULL) != VKR_ERR_INVALID) +
              (vkr_sgd_step(cmd, 0, &o, b, b, b) != VKR_ERR_INVALID) + (vkr_sgd_step(cmd, 17, &o, b, b, b) != VKR_ERR_INVALID);
    st_submit(c, cmd, VKR_OK, NULL);
    st_report_bad(c, "step", "bad args rejected", bad);
}

/* step 0 (1-based), no m, buffers too small, beta1 = 1: VKR_ERR_INVALID */
static void adam_bad_args(st_case *c, const void *unused) {
    (void)unused;
    vkr_buffer *b = st_fill(c, 16, 0);
    vkr_cmd *cmd = st_begin(c);
    if (!cmd) return;
    vkr_optim_params o = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f, .step = 0};
    int bad = vkr_adam_step(cmd, 16, &o, b, b, b, b) != VKR_ERR_INVALID;
    o.step = 1;
    bad += (vkr_adam_step(cmd, 16, &o, b, b, NULL, b) != VKR_ERR_INVALID) +
           (vkr_adam_step(cmd, 17, &o, b, b, b, b) != VKR_ERR_INVALID);
    o.beta1 = 1.0f;
    bad += vkr_adam_step(cmd, 16, &o, b, b, b, b) != VKR_ERR_INVALID;
    st_submit(c, cmd, VKR_OK, NULL);
    st_report_bad(c, "step", "bad args rejected", bad);
}

static const uint64_t k_opt_sizes[] = {1, 7, 1000, 100003};
#define MAX_OPT_CASES 64

vkr_status vkr_check_sgd(vkr_context *ctx, vkr_selftest *st) {
    static const struct {
        const char *label;
        float lr, momentum; /* every scalar varies over the cases */
        int nesterov, velocity;
        float l2, wd;
        int all_sizes;
        uint64_t chunk;
    } cases[] = {
        {"plain", 0.1f, 0, 0, 0, 0, 0, 1, 0},          {"lr.5 m.9", 0.5f, 0.9f, 0, 1, 0, 0, 1, 0},
        {"lr.01 nest", 0.01f, 0.9f, 1, 1, 0, 0, 1, 0}, {"m.5 l2", 0.1f, 0.5f, 0, 1, 0.01f, 0, 1, 0},
        {"lr.03 m.99 wd", 0.03f, 0.99f, 0, 1, 0, 0.05f, 1, 0},
        {"m0+vel", 0.1f, 0, 0, 1, 0, 0, 0, 0},        {"lr.2 plain", 0.2f, 0, 0, 0, 0, 0, 0, 4096},
        {"nest m.8 l2 wd", 0.1f, 0.8f, 1, 1, 0.02f, 0.01f, 0, 4096},
    };
    optim_case runs[MAX_OPT_CASES];
    size_t nr = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vkr_optim_params o = {.lr = cases[c].lr, .momentum = cases[c].momentum, .nesterov = cases[c].nesterov,
                              .l2 = cases[c].l2, .weight_decay = cases[c].wd};
        for (size_t k = 0; k < 4; k++) {
            uint64_t n = cases[c].all_sizes ? k_opt_sizes[k] : k == 0 ? (cases[c].chunk ? 100003 : 1000) : 0;
            if (n) runs[nr++] = (optim_case){0, o, cases[c].velocity, n, cases[c].chunk, cases[c].label, 1.0};
        }
    }
    st_suite S;
    st_suite_init(&S, ctx, st, "sgd", 13);
    vkr_status s = st_each(&S, runs, nr, sizeof runs[0], optim_run);
    return s ? s : ST_ONCE(&S, sgd_bad_args, NULL);
}

vkr_status vkr_check_adam(vkr_context *ctx, vkr_selftest *st) {
    static const struct {
        const char *label;
        float lr, l2, wd, beta1, beta2, eps; /* every scalar varies over the cases */
        int all_sizes;
        uint64_t chunk;
    } cases[] = {
        {"defaults", 1e-3f, 0, 0, 0.9f, 0.999f, 1e-7f, 1, 0},
        {"lr.01 wd b.8,.99", 0.01f, 0, 0.1f, 0.8f, 0.99f, 1e-7f, 1, 0},
        {"lr.01 l2 eps1e-3", 0.01f, 0.1f, 0, 0.9f, 0.999f, 1e-3f, 1, 0},
        {"lr.01 l2 wd b.5,.9 eps1e-8", 0.01f, 0.1f, 0.1f, 0.5f, 0.9f, 1e-8f, 0, 4096},
        {"lr.003 b0,.95 eps.1", 3e-3f, 0, 0, 0.0f, 0.95f, 0.1f, 1, 0},
    };
    optim_case runs[MAX_OPT_CASES];
    size_t nr = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vkr_optim_params o = {.lr = cases[c].lr, .beta1 = cases[c].beta1, .beta2 = cases[c].beta2, .eps = cases[c].eps,
                              .l2 = cases[c].l2, .weight_decay = cases[c].wd};
        for (size_t k = 0; k < 4; k++) {
            uint64_t n = cases[c].all_sizes ? k_opt_sizes[k] : k == 0 ? 100003 : 0;
            if (n) runs[nr++] = (optim_case){1, o, 1, n, cases[c].chunk, cases[c].label, 0.01};
        }
    }
    st_suite S;
    st_suite_init(&S, ctx, st, "adam", 14);
    vkr_status s = st_each(&S, runs, nr, sizeof runs[0], optim_run);
    return s ? s : ST_ONCE(&S, adam_bad_args, NULL);
}
