/* softmax and softmax_ce on the device vs runtime/ref/{softmax,softmax_ce}_ref.c (chunked rows,
 * in-place backward, argument checks), and the reference cross-entropy gradient vs central
 * finite differences. */
#include "ops/op_util.h"
#include "ref/softmax_ce_ref.h"
#include "ref/softmax_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

/* ------------------------------------------------------------ test data */
/* T_WEIGHTED: vkr_fit's --label-smoothing 0.1 + --class-weight rows: w_c * (onehot_c * 0.9 + 0.1 / k)
 * with w_c = 0.5 + 0.37 c (rows sum to w_c: the backward scales by the row sum) */
enum { T_ONEHOT, T_SOFT, T_TIES, T_RAW, T_WEIGHTED };
static const char *const k_tname[] = {"onehot", "soft", "ties", "raw", "weighted+smoothed"};

/* Logits in [-scale, scale] (T_TIES: integers 0..2, so rows have tied maxima). */
static void make_logits(vkr_rng *r, float *z, size_t n, double scale, int tmode) {
    for (size_t i = 0; i < n; i++)
        z[i] = tmode == T_TIES ? (float)floor(vkr_rng_uniform(r, 0, 3)) : (float)vkr_rng_uniform(r, -scale, scale);
}

/* One-hot: half the rows on the logits' argmax, the rest on a random class.
 * Soft: random positive rows summing to 1.  Ties: integer weights 0..2 normalized.
 * Raw: random weights in [0, 2), rows not normalized (the loss formula holds for any t). */
static void make_targets(vkr_rng *r, float *t, const float *z, int b, int k, int tmode) {
    for (int i = 0; i < b; i++) {
        float *ti = t + (size_t)i * k;
        const float *zi = z + (size_t)i * k;
        if (tmode == T_ONEHOT || tmode == T_WEIGHTED) {
            int c = 0;
            if (vkr_rng_uniform(r, 0, 1) < 0.5) {
                for (int j = 1; j < k; j++)
                    if (zi[j] > zi[c]) c = j;
            } else {
                c = (int)vkr_rng_uniform(r, 0, k);
                if (c >= k) c = k - 1;
            }
            for (int j = 0; j < k; j++) ti[j] = j == c ? 1.0f : 0.0f;
            if (tmode == T_WEIGHTED)
                for (int j = 0; j < k; j++) ti[j] = (float)((0.5 + 0.37 * c) * (ti[j] * 0.9 + 0.1 / k));
        } else {
            double s = 0;
            for (int j = 0; j < k; j++) {
                ti[j] = tmode == T_SOFT  ? (float)vkr_rng_uniform(r, 0.01, 1)
                        : tmode == T_RAW ? (float)vkr_rng_uniform(r, 0, 2)
                                         : (float)floor(vkr_rng_uniform(r, 0, 3));
                s += ti[j];
            }
            if (tmode != T_RAW)
                for (int j = 0; j < k; j++) ti[j] = s > 0 ? (float)(ti[j] / s) : 1.0f / (float)k;
        }
    }
}

static void chunk_label(char *buf, size_t size, uint64_t chunk) {
    if (chunk) snprintf(buf, size, " chunk%llu", (unsigned long long)chunk);
    else buf[0] = 0;
}

/* --------------------------------------------------------------- softmax */
typedef struct {
    int b, k;
    double scale;
    uint64_t chunk; /* forced chunk size in floats, 0 = device limit */
} sm_case;

static void softmax_run(st_case *c, const void *kase) {
    const sm_case *q = kase;
    size_t n = (size_t)q->b * q->k;
    float *x = st_alloc(c, n * 4);
    double *ref = st_doubles(c, n);
    if (c->s) return;
    make_logits(c->rng, x, n, q->scale, T_SOFT);
    double *xd = st_to_double(c, x, n);
    vkr_buffer *bx = st_upf(c, x, n), *by = st_fill(c, n, NAN);
    vkr__loss_force_chunk(q->chunk);
    ST_RUN(c, NULL, k, vkr_softmax_forward(k, q->b, q->k, by, bx));
    vkr__loss_force_chunk(0);
    if (c->s) return;
    vkr_ref_softmax_forward(q->b, q->k, ref, xd);
    st_err e = {0, 0};
    st_cmp(c, by, ref, n, 0, &e);
    char shape[64], cl[32];
    chunk_label(cl, sizeof cl, q->chunk);
    snprintf(shape, sizeof shape, "%dx%d%s%s", q->b, q->k, q->scale > 10 ? " ±80" : "", cl);
    st_report(c, "forward", shape, e, TOL_SOFTMAX);
}

vkr_status vkr_check_softmax(vkr_context *ctx, vkr_selftest *st) {
    static const sm_case cases[] = {
        {1, 1, 3, 0},     {3, 2, 3, 0},     {32, 5, 3, 0},     {3, 10, 80, 0},   {1000, 10, 3, 0},
        {1000, 10, 80, 0}, {7, 33, 3, 0},   {5, 64, 80, 0},    {32, 1000, 3, 0}, {3, 1000, 80, 0},
        {1, 1000, 3, 0},  {1000, 127, 3, 0}, {70001, 33, 3, 0}, {1000, 7, 3, 1024}, {7, 1001, 80, 1024},
    };
    st_suite S;
    st_suite_init(&S, ctx, st, "softmax", 11);
    return ST_EACH(&S, cases, softmax_run);
}

/* ------------------------------------------------------------ softmax_ce */
typedef struct {
    int b, k;
    double scale;
    int tmode;
    uint64_t chunk;
    int inplace_bwd; /* backward writes dlogits over probs */
} ce_case;

static void ce_run(st_case *c, const void *kase) {
    const ce_case *q = kase;
    size_t n = (size_t)q->b * q->k;
    float *z = st_alloc(c, n * 4), *t = st_alloc(c, n * 4), res[2] = {NAN, NAN};
    double *pref = st_doubles(c, n), *dref = st_doubles(c, n);
    if (c->s) return;
    make_logits(c->rng, z, n, q->scale, q->tmode);
    make_targets(c->rng, t, z, q->b, q->k, q->tmode);
    double *zd = st_to_double(c, z, n), *td = st_to_double(c, t, n);
    vkr_buffer *bz = st_upf(c, z, n), *bt = st_upf(c, t, n), *bp = st_fill(c, n, NAN);
    vkr_buffer *br = st_upf(c, res, 2); /* NaN: the op must overwrite */
    vkr__loss_force_chunk(q->chunk);
    ST_RUN(c, NULL, k, vkr_softmax_ce_forward(k, q->b, q->k, br, bp, bz, bt));
    vkr__loss_force_chunk(0);
    float *gp = st_down(c, bp, n);
    if (!c->s) c->s = vkr_buffer_download(br, 0, res, sizeof res);
    if (c->s) return;
    char shape[80], cl[32];
    chunk_label(cl, sizeof cl, q->chunk);
    snprintf(shape, sizeof shape, "%dx%d%s %s%s%s", q->b, q->k, q->scale > 10 ? " ±80" : "", k_tname[q->tmode], cl,
             q->inplace_bwd ? " inplace" : "");
    double rres[2];
    vkr_ref_softmax_ce_forward(q->b, q->k, rres, pref, zd, td);
    st_err fe = {0, 0};
    st_cmp_host(gp, pref, n, 0, &fe);
    /* loss: relative (absolute below 1, where a float log(1 + tiny) may round to 0) */
    double dl = fabs((double)res[0] - rres[0]);
    st_err_fold(&fe, dl, dl != dl ? NAN : dl / (fabs(rres[0]) > 1 ? fabs(rres[0]) : 1));
    if ((double)res[1] != rres[1]) fe.rel = INFINITY; /* correct count: exact */
    st_report(c, "forward", shape, fe, TOL_SOFTMAX_CE_FWD);
    /* backward from the device's probs */
    double *gpd = st_to_double(c, gp, n);
    vkr_buffer *bd = q->inplace_bwd ? bp : st_fill(c, n, NAN);
    vkr__loss_force_chunk(q->chunk);
    ST_RUN(c, NULL, k, vkr_softmax_ce_backward(k, q->b, q->k, bd, bp, bt));
    vkr__loss_force_chunk(0);
    if (c->s) return;
    vkr_ref_softmax_ce_backward(q->b, q->k, dref, gpd, td);
    st_err be = {0, 0};
    st_cmp(c, bd, dref, n, 0, &be);
    st_report(c, "backward", shape, be, TOL_SOFTMAX_CE_BWD);
}

/* Invalid shapes / aliasing must be rejected with VKR_ERR_INVALID (reported on the forward line). */
static void ce_bad_args(st_case *c, const void *unused) {
    (void)unused;
    vkr_buffer *a = st_fill(c, 10, 0), *b = st_fill(c, 10, 0), *r = st_fill(c, 2, 0);
    vkr_cmd *cmd = st_begin(c);
    if (!cmd) return;
    int bad = (vkr_softmax_ce_forward(cmd, 0, 5, r, a, b, b) != VKR_ERR_INVALID) +
              (vkr_softmax_ce_forward(cmd, 2, 5, r, a, a, b) != VKR_ERR_INVALID) + /* probs aliases logits */
              (vkr_softmax_ce_forward(cmd, 3, 5, r, a, b, b) != VKR_ERR_INVALID) + /* buffers too small */
              (vkr_softmax_ce_forward(cmd, 2, 5, a, r, b, b) != VKR_ERR_INVALID) + /* probs too small */
              (vkr_softmax_forward(cmd, 2, -1, a, b) != VKR_ERR_INVALID) +
              (vkr_softmax_ce_backward(cmd, 2, 5, a, NULL, b) != VKR_ERR_INVALID);
    st_submit(c, cmd, VKR_OK, NULL);
    st_report_bad(c, "forward", "bad args rejected", bad);
}

/* reference backward vs central finite differences of the reference loss ((probs * rowsum(t) - t) /
 * batch: one-hot or soft rows, class-weighted smoothed rows and unnormalized raw rows) */
typedef struct {
    int b, k;
    double scale;
    int tmode;
} ce_fd_case;

typedef struct {
    int b, k;
    const double *t;
    double *probs;
} ce_fd_ud;

static void ce_loss(void *ud, const double *x, double *out) {
    ce_fd_ud *f = ud;
    double res[2];
    vkr_ref_softmax_ce_forward(f->b, f->k, res, f->probs, x, f->t);
    out[0] = res[0];
}

static void ce_fd(st_case *c, const void *kase) {
    const ce_fd_case *q = kase;
    size_t n = (size_t)q->b * q->k;
    float *z = st_alloc(c, n * 4), *t = st_alloc(c, n * 4);
    double *p = st_doubles(c, n), *g = st_doubles(c, n);
    if (c->s) return;
    make_logits(c->rng, z, n, q->scale, q->tmode == T_TIES ? T_SOFT : q->tmode);
    make_targets(c->rng, t, z, q->b, q->k, q->tmode);
    double *zd = st_to_double(c, z, n), *td = st_to_double(c, t, n), res[2], one = 1;
    if (c->s) return;
    vkr_ref_softmax_ce_forward(q->b, q->k, res, p, zd, td);
    vkr_ref_softmax_ce_backward(q->b, q->k, g, p, td);
    ce_fd_ud f = {q->b, q->k, td, p};
    st_err e = {0, 0};
    st_fd(c, ce_loss, &f, zd, n, 1, &one, g, (int)n, FD_H_SMOOTH, &e);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d%s %s", q->b, q->k, q->scale > 10 ? " ±big" : "", k_tname[q->tmode]);
    st_report(c, ST_FD, shape, e, TOL_FD);
}

vkr_status vkr_check_softmax_ce(vkr_context *ctx, vkr_selftest *st) {
    static const ce_case cases[] = {
        {1, 1, 3, T_ONEHOT, 0, 0},     {3, 2, 3, T_SOFT, 0, 0},       {32, 5, 3, T_ONEHOT, 0, 0},
        {32, 10, 80, T_ONEHOT, 0, 0},  {3, 10, 80, T_SOFT, 0, 1},     {1000, 10, 3, T_ONEHOT, 0, 0},
        {1000, 10, 3, T_TIES, 0, 0},   {7, 33, 3, T_TIES, 0, 0},      {32, 1000, 80, T_SOFT, 0, 0},
        {3, 1000, 80, T_ONEHOT, 0, 0}, {1000, 1000, 3, T_ONEHOT, 0, 0}, {3, 7, 80, T_RAW, 0, 0}, {1000, 7, 3, T_ONEHOT, 1024, 0},
        {5, 1001, 80, T_SOFT, 1024, 1}, {300, 13, 3, T_RAW, 0, 0}, {32, 5, 3, T_WEIGHTED, 0, 0},
        {1000, 7, 3, T_WEIGHTED, 1024, 0}, {3, 10, 80, T_WEIGHTED, 0, 1},
    };
    static const ce_fd_case fd[] = {
        {3, 5, 3, T_SOFT}, {2, 1, 3, T_ONEHOT}, {4, 7, 20, T_ONEHOT}, {2, 10, 1, T_TIES}, {3, 4, 80, T_SOFT}, {4, 5, 3, T_WEIGHTED}, {3, 4, 3, T_RAW}};
    st_suite S;
    st_suite_init(&S, ctx, st, "softmax_ce", 12);
    vkr_status s;
    if ((s = ST_EACH(&S, cases, ce_run)) || (s = ST_ONCE(&S, ce_bad_args, NULL))) return s;
    return ST_EACH(&S, fd, ce_fd);
}
