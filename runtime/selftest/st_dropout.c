/* dropout on the device vs runtime/ref/dropout_ref.c: the mask element for element (and the kept
 * values bit for bit against the host's float product), the keep rate within a binomial bound,
 * the backward (the same call on the gradient) with the same mask, reruns identical, another
 * step or layer another mask, masks across the 2^32 element boundary and the chunked path. */
#include "ops/elem_split.h"
#include "ref/dropout_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    uint64_t n, first;
    float rate;
    int inplace; /* out over inp */
    int split;   /* bindings of 1000 floats */
} dropout_case;

/* device dropout of x (floats) with key into a fresh (or the same) buffer; NULL after a failure */
static float *run_once(st_case *c, const float *x, uint64_t n, uint64_t first, const vkr_dropout_key *key, int inplace,
                       int split) {
    vkr_buffer *bx = st_upf(c, x, n), *bo = inplace ? bx : st_fill(c, n, NAN);
    if (split) vkr__elem_force_chunk_floats(1000);
    ST_RUN(c, NULL, k, vkr_dropout(k, n, first, key, bo, bx));
    vkr__elem_force_chunk_floats(0);
    if (c->s) return NULL;
    return st_down(c, bo, n);
}

static void dropout_run(st_case *c, const void *kase) {
    const dropout_case *q = kase;
    uint64_t n = q->n;
    vkr_dropout_key key = {q->rate, 0x1234567890abcdefull, 77, 5};
    float *x = st_randf(c, n, -2, 2), *dy = st_randf(c, n, -2, 2);
    double *xd = st_doubles(c, n), *ref = st_doubles(c, n);
    if (c->s) return;
    for (uint64_t i = 0; i < n; i++) xd[i] = x[i];
    float *y = run_once(c, x, n, q->first, &key, q->inplace, q->split);
    float *y2 = run_once(c, x, n, q->first, &key, 0, 0);
    float *dx = run_once(c, dy, n, q->first, &key, q->inplace, q->split);
    vkr_dropout_key other = key;
    other.step++;
    float *y3 = run_once(c, x, n, q->first, &other, 0, 0);
    other = key;
    other.salt++;
    float *y4 = run_once(c, x, n, q->first, &other, 0, 0);
    if (!y || !y2 || !dx || !y3 || !y4) return;
    vkr_ref_dropout(n, q->first, &key, ref, xd);
    char shape[96];
    snprintf(shape, sizeof shape, "n=%llu rate %g%s%s%s", (unsigned long long)n, q->rate,
             q->first ? " from 2^32-100" : "", q->split ? " split" : "", q->inplace ? " inplace" : "");
    st_err fe = {0, 0};
    st_cmp_host(y, ref, n, 0, &fe);
    st_report(c, "forward", shape, fe, TOL_DROPOUT);
    float scale = vkr_dropout_scale(q->rate);
    double bad = 0, kept = 0, rerun = 0, samemask3 = 0, samemask4 = 0;
    for (uint64_t i = 0; i < n; i++) {
        int keep = vkr_ref_dropout_keep(&key, q->first + i);
        float want = keep ? x[i] * scale : 0.0f, dwant = keep ? dy[i] * scale : 0.0f;
        bad += y[i] != want || dx[i] != dwant; /* exact, forward and backward: the same mask */
        kept += keep;
        rerun += y2[i] != y[i];
        samemask3 += (y3[i] != 0) == (y[i] != 0);
        samemask4 += (y4[i] != 0) == (y[i] != 0);
    }
    st_report_bad(c, "forward", "kept values x * scale bit for bit, backward the same mask", bad);
    st_report_bad(c, "forward", "rerun with the same key identical", rerun);
    /* keep rate within 5 standard deviations of the binomial's (p = 1 - floor(rate 2^24) / 2^24) */
    double p = 1 - floor((double)q->rate * 16777216.0) / 16777216.0, sd = sqrt(p * (1 - p) / (double)n);
    int rate_ok = fabs(kept / (double)n - p) <= 5 * sd + 1e-12;
    char what[128];
    snprintf(what, sizeof what, "keep rate %.5f vs %.5f (5 sd %.5f)", kept / (double)n, p, 5 * sd);
    st_report_bad(c, "forward", what, rate_ok ? 0 : 1);
    if (n >= 1000 && q->rate > 0.1) { /* another step / layer: a mask agreeing far less than always */
        double agree = 1 - 2 * p * (1 - p); /* two independent masks */
        double sd2 = sqrt(agree * (1 - agree) / (double)n);
        int ok = fabs(samemask3 / (double)n - agree) <= 5 * sd2 + 0.002 && fabs(samemask4 / (double)n - agree) <= 5 * sd2 + 0.002;
        snprintf(what, sizeof what, "another step / layer: masks agree on %.4f / %.4f (independent: %.4f)",
                 samemask3 / (double)n, samemask4 / (double)n, agree);
        st_report_bad(c, "forward", what, ok ? 0 : 1);
    }
}

static void drop_f(void *ud, const double *x, double *out) {
    const dropout_case *q = ud;
    vkr_dropout_key key = {q->rate, 9, 1, 2};
    vkr_ref_dropout(q->n, q->first, &key, out, x);
}

/* the reference backward (the same map on the gradient) vs finite differences of the forward */
static void dropout_fd(st_case *c, const void *kase) {
    const dropout_case *q = kase;
    uint64_t n = q->n;
    double *x = st_rand(c, n, -2, 2), *r = st_rand(c, n, -1, 1), *g = st_doubles(c, n);
    if (c->s) return;
    drop_f((void *)q, r, g); /* J^T r = mask(r) */
    st_err e = {0, 0};
    st_fd(c, drop_f, (void *)q, x, n, n, r, g, (int)n, FD_H_SMOOTH, &e);
    char shape[48];
    snprintf(shape, sizeof shape, "n=%llu rate %g", (unsigned long long)n, q->rate);
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_dropout(vkr_context *ctx, vkr_selftest *st) {
    static const dropout_case cases[] = {
        {1, 0, 0.5f, 0, 0},           {1000, 0, 0.0f, 0, 0},      {1000, 0, 0.2f, 1, 0}, {100003, 0, 0.5f, 0, 0},
        {100003, 0, 0.9f, 1, 0},      {2503, 0, 0.3f, 0, 1},      {4099, 4294967196ull, 0.5f, 0, 0},
    };
    static const dropout_case fd[] = {{37, 0, 0.5f, 0, 0}, {20, 3, 0.25f, 0, 0}};
    st_suite S;
    st_suite_init(&S, ctx, st, "dropout", 13);
    vkr_status s;
    if ((s = ST_EACH(&S, cases, dropout_run))) return s;
    return ST_EACH(&S, fd, dropout_fd);
}
