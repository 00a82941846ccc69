/* The self-test harness (see harness.h). */
#include "selftest/harness.h"
#include "ops/elem_split.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_suite_init(st_suite *S, vkr_context *ctx, vkr_selftest *st, const char *op, uint64_t seed) {
    S->ctx = ctx;
    S->st = st;
    S->op = op;
    vkr_rng_seed(&S->rng, seed);
}

vkr_status st_each(st_suite *S, const void *cases, size_t ncases, size_t case_size, st_case_fn fn) {
    for (size_t i = 0; i < ncases; i++) {
        st_case c = {.S = S, .ctx = S->ctx, .rng = &S->rng, .op = S->op};
        fn(&c, cases ? (const char *)cases + i * case_size : NULL);
        for (int k = 0; k < c.nbuf; k++) vkr_buffer_destroy(c.buf[k]);
        for (int k = 0; k < c.nhost; k++) free(c.host[k]);
        if (c.s) return c.s;
    }
    return VKR_OK;
}

/* ------------------------------------------------------------------ inputs */

void *st_alloc(st_case *c, size_t bytes) {
    if (c->s) return NULL;
    void *p = c->nhost < ST_MAX_HOST ? calloc(1, bytes ? bytes : 1) : NULL;
    if (!p) {
        c->s = c->nhost < ST_MAX_HOST ? vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory")
                                      : vkr_fail(VKR_ERR_INVALID, "selftest: more than %d host arrays in a case", ST_MAX_HOST);
        return NULL;
    }
    return c->host[c->nhost++] = p;
}

double *st_doubles(st_case *c, size_t n) { return st_alloc(c, n * sizeof(double)); }

double *st_rand(st_case *c, size_t n, double lo, double hi) {
    double *x = st_doubles(c, n);
    if (x)
        for (size_t i = 0; i < n; i++) x[i] = (float)vkr_rng_uniform(c->rng, lo, hi);
    return x;
}

float *st_randf(st_case *c, size_t n, double lo, double hi) {
    float *x = st_alloc(c, n * sizeof(float));
    if (x) vkr_rng_fill(c->rng, x, n, lo, hi);
    return x;
}

double *st_rand_ties(st_case *c, size_t n) {
    double *x = st_doubles(c, n);
    if (x)
        for (size_t i = 0; i < n; i++) x[i] = floor(vkr_rng_uniform(c->rng, -2, 3));
    return x;
}

double *st_rand_distinct(st_case *c, size_t n) {
    double *x = st_doubles(c, n);
    if (!x) return NULL;
    for (size_t i = 0; i < n; i++) x[i] = -2.0 + 4.0 * (double)i / (double)n;
    for (size_t i = n; i > 1; i--) { /* shuffle */
        size_t j = (size_t)vkr_rng_uniform(c->rng, 0, (double)i);
        if (j >= i) j = i - 1;
        double t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    return x;
}

double *st_rand_away_from_zero(st_case *c, size_t n) {
    double *x = st_doubles(c, n);
    if (x)
        for (size_t i = 0; i < n; i++) {
            double v = vkr_rng_uniform(c->rng, 0.1, 2);
            x[i] = vkr_rng_uniform(c->rng, 0, 1) < 0.5 ? -v : v;
        }
    return x;
}

double *st_to_double(st_case *c, const float *x, size_t n) {
    double *d = x ? st_doubles(c, n) : NULL;
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

vkr_buffer *st_keep(st_case *c, vkr_buffer *b) {
    if (!b) return NULL;
    if (c->nbuf == ST_MAX_BUF) {
        vkr_buffer_destroy(b);
        if (!c->s) c->s = vkr_fail(VKR_ERR_INVALID, "selftest: more than %d device buffers in a case", ST_MAX_BUF);
        return NULL;
    }
    return c->buf[c->nbuf++] = b;
}

vkr_buffer *st_upf(st_case *c, const float *x, size_t n) {
    vkr_buffer *b = NULL;
    if (!c->s) c->s = vkr_buffer_from_floats(c->ctx, x, n, &b);
    return st_keep(c, b);
}

vkr_buffer *st_up(st_case *c, const double *x, size_t n) {
    float *f = x ? st_alloc(c, n * sizeof(float)) : NULL;
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return st_upf(c, f, n);
}

vkr_buffer *st_fill(st_case *c, size_t n, float value) {
    float *f = st_alloc(c, n * sizeof(float));
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) f[i] = value;
    return st_upf(c, f, n);
}

float *st_down(st_case *c, vkr_buffer *b, size_t n) {
    float *f = st_alloc(c, n * sizeof(float));
    if (f) c->s = vkr_buffer_download(b, 0, f, n * sizeof(float));
    return c->s ? NULL : f;
}

/* -------------------------------------------------------------- device run */

vkr_cmd *st_begin(st_case *c) {
    vkr_cmd *k = NULL;
    if (!c->s) c->s = vkr_cmd_begin(c->ctx, &k);
    return c->s ? NULL : k;
}

void st_submit(st_case *c, vkr_cmd *cmd, vkr_status recorded, uint32_t *ndispatch) {
    if (!c->s) c->s = recorded;
    if (ndispatch) *ndispatch = vkr_cmd_dispatch_count(cmd);
    if (!c->s) c->s = vkr_cmd_submit(cmd);
    vkr_cmd_free(cmd);
}

void st_force_elem_split(st_case *c, uint64_t per, uint64_t max_plane) {
    vkr__elem_force_chunk_floats(per * max_plane + 2 * vkr__elem_align_floats(c->ctx));
}

/* ------------------------------------------------------ comparison, report */

void st_err_fold(st_err *e, double abs, double rel) {
    if (abs > e->abs || abs != abs) e->abs = abs;
    if (rel > e->rel || rel != rel) e->rel = rel;
}

void st_cmp_d(const double *got, const double *ref, size_t n, double floor, st_err *e) {
    double ma = 0, scale = floor;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (d != d) nan = 1;
        if (d > ma) ma = d;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    st_err_fold(e, nan ? NAN : ma, nan ? NAN : ma / (scale > 1e-30 ? scale : 1e-30));
}

void st_cmp_host(const float *got, const double *ref, size_t n, double floor, st_err *e) {
    double ma = 0, scale = floor;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d != d) nan = 1;
        if (d > ma) ma = d;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    st_err_fold(e, nan ? NAN : ma, nan ? NAN : ma / (scale > 1e-30 ? scale : 1e-30));
}

void st_cmp(st_case *c, vkr_buffer *b, const double *ref, size_t n, double floor, st_err *e) {
    float *got = st_down(c, b, n);
    if (got) st_cmp_host(got, ref, n, floor, e);
}

void st_report(st_case *c, const char *dir, const char *shape, st_err e, double tol) {
    if (!c->s) vkr_selftest_add(c->S->st, c->op, dir, shape, e.abs, e.rel, tol);
}

void st_report_bad(st_case *c, const char *dir, const char *shape, double nbad) {
    st_err e = {nbad, nbad};
    st_report(c, dir, shape, e, 0);
}

void st_expect_split(st_case *c, const char *dir, uint32_t ndispatch, uint32_t min) {
    if (ndispatch > min) return;
    char s[64];
    snprintf(s, sizeof s, "split path not taken (%u dispatches)", ndispatch);
    st_report_bad(c, dir, s, 1);
}

void st_fd(st_case *c, st_fd_fn f, void *ud, double *x, size_t nx, size_t nout, const double *r,
           const double *analytic, int nsamples, double h, st_err *e) {
    double *o = st_doubles(c, nout), ma = 0, mg = 0;
    if (!o) return;
    size_t step = nx > (size_t)nsamples ? nx / (size_t)nsamples : 1;
    for (size_t i = step / 2; i < nx; i += step) {
        double keep = x[i], lp = 0, lm = 0;
        x[i] = keep + h;
        f(ud, x, o);
        for (size_t j = 0; j < nout; j++) lp += r[j] * o[j];
        x[i] = keep - h;
        f(ud, x, o);
        for (size_t j = 0; j < nout; j++) lm += r[j] * o[j];
        x[i] = keep;
        double d = fabs((lp - lm) / (2 * h) - analytic[i]);
        if (d > ma || d != d) ma = d;
        if (fabs(analytic[i]) > mg) mg = fabs(analytic[i]);
    }
    st_err_fold(e, ma, ma / (mg > 1e-30 ? mg : 1e-30));
}

/* (checks.h) the conv checks' chunk limit: see plan_chunk in gemm_conv.c */
uint64_t vkr_st_conv_chunk_limit(const vkr_context *ctx, const vkr_conv2d_shape *p, int images) {
    const vkr_device_info *I = vkr_context_device(ctx);
    uint64_t a = I->min_storage_buffer_offset_alignment;
    if (I->min_texel_buffer_offset_alignment > a) a = I->min_texel_buffer_offset_alignment;
    if (a < 16) a = 16;
    uint64_t chw = (uint64_t)p->c * p->h * p->w, kohw = (uint64_t)p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t per = (chw > kohw ? chw : kohw) * 4;
    return a + 16 + per * images + per / 2;
}
