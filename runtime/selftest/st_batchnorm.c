/* Batch norm (inference and training) on the device vs runtime/ref/batchnorm_ref.c, and the
 * reference backwards vs central finite differences (double).
 *
 * Besides the automatic path choice, cases force the split (two-pass partial)
 * path, small block sizes (many partials per channel) and a small chunk limit
 * (binding split by batch with unaligned sub-range offsets, statistics merged
 * across chunks) through the internal thread-local override
 * vkr__bn_test_overrides (runtime/ops/batchnorm.c).
 *
 * Shape labels: NxCxHxW, "fused"/"split" forced path, "B<n>" block size,
 * "chunk<n>" chunk limit in floats, "-dinp/-dg/-db" NULL gradient outputs,
 * "const" constant channels; then the scalar parameters: K = Keras convention
 * (eps 1e-3, momentum 0.99, biased running variance), T = torch (1e-5, 0.9,
 * unbiased), otherwise "e<eps> m<momentum>" and "u" for unbiased.  Every
 * scalar parameter varies over the cases (inference too: a shader that ignored
 * eps would fail).
 *
 * Error metric: max |got - ref| / max(max |ref|, floor) per tensor, where the
 * floor is the scale the tensor's rounding errors are proportional to (see
 * bn_floors), so a reference that is ~0 (dgamma of a constant input, the mean
 * of centered data) is not divided by ~0.  Constant inputs are also checked
 * for what they must give exactly (bn_check_constant). */
#include "ops/op_util.h"
#include "ref/batchnorm_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NO_DINP 1
#define NO_DGAMMA 2
#define NO_DBETA 4

typedef struct {
    int n, c, h, w;
    int path;       /* 0 auto, 1 fused, 2 split */
    uint32_t block; /* 0 default */
    uint64_t chunk; /* 0 device limit */
    int nulls;      /* NO_* */
    int constant;   /* every channel holds one repeated value (variance 0) */
} bn_case;

static const bn_case k_cases[] = {
    {1, 1, 1, 1, 0, 0, 0, 0, 0},        /* degenerate: one value per channel */
    {1, 3, 1, 1, 0, 0, 0, 0, 0},
    {3, 7, 1, 1, 0, 0, 0, 0, 0},        /* dense-like activations */
    {1, 13, 5, 3, 0, 0, 0, 0, 0},       /* non-square */
    {3, 127, 7, 7, 0, 0, 0, 0, 0},
    {3, 1, 11, 9, 0, 0, 0, NO_DGAMMA, 0},
    {1, 3, 56, 56, 0, 0, 0, 0, 0},
    {3, 4, 64, 64, 0, 0, 0, 0, 0},      /* N*H*W = 12288, fused */
    {3, 4, 64, 64, 2, 0, 0, 0, 0},      /* same, two-pass partials (3 blocks of 4096) */
    {2, 3, 100, 100, 0, 0, 0, 0, 0},    /* N*H*W = 20000 > fused limit: split automatically */
    {3, 7, 10, 9, 2, 64, 0, 0, 0},      /* many partials per channel */
    {3, 7, 10, 9, 2, 16, 0, NO_DBETA, 0},
    {3, 7, 10, 9, 2, 16, 0, NO_DGAMMA | NO_DBETA, 0},
    {3, 7, 10, 9, 2, 16, 0, NO_DINP, 0},
    {3, 7, 10, 9, 1, 0, 0, NO_DINP | NO_DBETA, 0},
    {5, 3, 7, 5, 0, 16, 300, 0, 0},     /* chunks of 2,2,1 samples, unaligned offsets, partials */
    {5, 3, 7, 5, 0, 0, 300, NO_DGAMMA, 0},
    {5, 3, 7, 5, 0, 0, 120, NO_DINP, 0},/* one sample per chunk */
    {7, 13, 1, 1, 0, 0, 28, NO_DBETA, 0},/* HW = 1, one sample per chunk: slots span two chunks */
    {7, 13, 1, 1, 0, 8, 40, 0, 0},
    {4, 2, 3, 1, 2, 8, 0, NO_DGAMMA | NO_DBETA, 0},
    /* constant channels (variance 0): fused, torch eps (1/sqrt(eps) = 316 amplifies any error
     * of the mean), split with block partials merged by Chan's formula, chunked */
    {3, 2, 2, 2, 0, 0, 0, 0, 1},        /* T */
    {3, 5, 7, 5, 2, 16, 0, 0, 1},
    {5, 3, 7, 5, 0, 16, 300, 0, 1},
    {2, 9, 4, 4, 0, 0, 0, NO_DBETA, 1},
    {3, 2, 2, 2, 0, 0, 0, 0, 1},        /* K: the case that failed on an NVIDIA H200 */
};

/* Scalar parameters, cycled over the cases (case i uses k_params[i % 5]); the first two are the
 * Keras and torch conventions.  eps from 0.1 (dominates small variances) down to 1e-5. */
static const struct {
    float eps, momentum;
    int unbiased;
    const char *name;
} k_params[] = {
    {1e-3f, 0.99f, 0, "K"}, {1e-5f, 0.9f, 1, "T"}, {0.1f, 0.5f, 1, NULL}, {1e-2f, 0.0f, 0, NULL}, {2e-4f, 0.999f, 1, NULL},
};

static void fill_inputs(vkr_rng *rng, float *x, const bn_case *k) {
    size_t hw = (size_t)k->h * k->w;
    for (int c = 0; c < k->c; c++) {
        double shift = vkr_rng_uniform(rng, -3, 3), scale = k->constant ? 0 : vkr_rng_uniform(rng, 0.3, 2);
        for (int n = 0; n < k->n; n++)
            for (size_t i = 0; i < hw; i++)
                x[((size_t)n * k->c + c) * hw + i] = (float)(shift + scale * vkr_rng_uniform(rng, -1, 1));
    }
}

static void case_label(char *buf, size_t sz, const bn_case *k, const vkr_bn_shape *p, int train, size_t pi) {
    int o = snprintf(buf, sz, "%dx%dx%dx%d", k->n, k->c, k->h, k->w);
    if (k->path == 1) o += snprintf(buf + o, sz - o, " fused");
    if (k->path == 2) o += snprintf(buf + o, sz - o, " split");
    if (k->block) o += snprintf(buf + o, sz - o, " B%u", k->block);
    if (k->chunk) o += snprintf(buf + o, sz - o, " chunk%llu", (unsigned long long)k->chunk);
    if (k->nulls & NO_DINP) o += snprintf(buf + o, sz - o, " -dinp");
    if (k->nulls & NO_DGAMMA) o += snprintf(buf + o, sz - o, " -dg");
    if (k->nulls & NO_DBETA) o += snprintf(buf + o, sz - o, " -db");
    if (k->constant) o += snprintf(buf + o, sz - o, " const");
    if (k_params[pi].name && (train || pi == 0)) snprintf(buf + o, sz - o, " %s", k_params[pi].name);
    else if (train) snprintf(buf + o, sz - o, " e%.0e m%g%s", p->eps, p->momentum, p->unbiased_running_var ? " u" : "");
    else snprintf(buf + o, sz - o, " e%.0e", p->eps);
}

/* Scales the errors of each tensor are measured against (the floors of st_cmp):
 *   out          max |gamma|          (gamma * xhat with |xhat| ~ 1: the output of a constant
 *                                      channel is beta, whatever its size)
 *   means        max |x|              (a mean's rounding is relative to the data, not to the
 *                                      mean, which can be ~0)
 *   dgamma/dbeta max_c sum |dout|     (sums of dout * xhat and dout)
 *   dinp         max(gamma * invstd) * max |dout|
 * invstd, running variance: bounded below by the data, no floor. */
typedef struct { double out, mean, sums, dinp; } bn_floor;

static bn_floor bn_floors(const vkr_bn_shape *p, const double *x, const double *dy, const double *g,
                          const double *invstd) {
    size_t C = (size_t)p->c, hw = (size_t)p->h * p->w;
    bn_floor f = {0, 0, 0, 0};
    double gi = 0, dmax = 0;
    for (size_t c = 0; c < C; c++) {
        double sa = 0;
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) {
                size_t a = ((size_t)n * C + c) * hw + i;
                sa += fabs(dy[a]);
                f.mean = fmax(f.mean, fabs(x[a]));
                dmax = fmax(dmax, fabs(dy[a]));
            }
        f.sums = fmax(f.sums, sa);
        f.out = fmax(f.out, fabs(g[c]));
        gi = fmax(gi, fabs(g[c]) * invstd[c]);
    }
    f.dinp = gi * dmax;
    return f;
}

/* Constant channels (variance 0): the training forward must give mean = the value, out = beta
 * and dgamma = 0 exactly, on any device.  The shaders compute the mean as K + sum(x - K) / n
 * with K one of the channel's values: every x - K is 0, so the mean is K whatever the order of
 * the sums or the rounding of the division (Vulkan allows 2.5 ulp; a mean 1 ulp off is
 * amplified by invstd = 1/sqrt(eps) into out and dgamma).  Then x - mean = 0, out =
 * gamma * 0 + beta and dgamma = sum dout * 0 exactly: tolerance 0. */
static void bn_check_constant(st_case *c, const char *label, const vkr_bn_shape *p, const float *x, const float *beta,
                              vkr_buffer *bout, vkr_buffer *bsm, vkr_buffer *bdg) {
    size_t C = (size_t)p->c, hw = (size_t)p->h * p->w, total = (size_t)p->n * C * hw;
    float *out = st_down(c, bout, total), *sm = st_down(c, bsm, C), *dg = bdg ? st_down(c, bdg, C) : NULL;
    if (c->s) return;
    double bad = 0;
    for (size_t i = 0; i < total; i++) bad = fmax(bad, fabs((double)out[i] - beta[(i / hw) % C]));
    for (size_t ch = 0; ch < C; ch++) {
        bad = fmax(bad, fabs((double)sm[ch] - x[ch * hw]));
        if (dg) bad = fmax(bad, fabs((double)dg[ch]));
    }
    st_err e = {bad, bad};
    st_report(c, "constant input: out = beta, dgamma = 0", label, e, TOL_BN_CONSTANT);
}

/* One case: forward + backward on the device vs the reference, scalar parameters
 * k_params[i % 5] for case i.  The suite's op is batchnorm_train (training mode) or
 * batchnorm_infer. */
typedef struct {
    const bn_case *k;
    size_t pi;
} bn_run_case;

static void bn_run(st_case *c, const void *kase) {
    const bn_case *k = ((const bn_run_case *)kase)->k;
    size_t pi = ((const bn_run_case *)kase)->pi;
    int train = !strcmp(c->op, "batchnorm_train");
    size_t C = (size_t)k->c, total = (size_t)k->n * k->c * k->h * k->w;
    vkr_bn_shape p = {k->n, k->c, k->h, k->w, k_params[pi].eps, k_params[pi].momentum, k_params[pi].unbiased};
    float *x = st_alloc(c, total * 4), *dy = st_alloc(c, total * 4), *cp = st_alloc(c, C * 4 * 4);
    double *out = st_doubles(c, total), *dx = st_doubles(c, total), *cd = st_doubles(c, C * 5);
    if (c->s) return;
    float *g = cp, *bt = cp + C, *m = cp + 2 * C, *v = cp + 3 * C;
    fill_inputs(c->rng, x, k);
    vkr_rng_fill(c->rng, dy, total, -1, 1);
    vkr_rng_fill(c->rng, g, C, 0.5, 1.5);
    vkr_rng_fill(c->rng, bt, C, -1, 1);
    vkr_rng_fill(c->rng, m, C, -1, 1);  /* running mean */
    vkr_rng_fill(c->rng, v, C, 0.2, 2); /* running var */
    double *xd = st_to_double(c, x, total), *dyd = st_to_double(c, dy, total), *pd = st_to_double(c, cp, 4 * C);
    vkr_buffer *bx = st_upf(c, x, total), *bdy = st_upf(c, dy, total), *bg = st_upf(c, g, C), *bb = st_upf(c, bt, C);
    vkr_buffer *bm = st_upf(c, m, C), *bv = st_upf(c, v, C);
    /* outputs start as garbage */
    vkr_buffer *bout = st_fill(c, total, 1e30f), *bdx = st_fill(c, total, 1e30f), *bsm = st_fill(c, C, 1e30f);
    vkr_buffer *bsi = st_fill(c, C, 1e30f), *bdg = st_fill(c, C, 1e30f), *bdb = st_fill(c, C, 1e30f);
    vkr_buffer *odx = (k->nulls & NO_DINP) ? NULL : bdx, *odg = (k->nulls & NO_DGAMMA) ? NULL : bdg,
               *odb = (k->nulls & NO_DBETA) ? NULL : bdb;
    vkr_cmd *cmd = st_begin(c);
    if (!cmd) return;
    vkr__bn_test_overrides(k->chunk, k->path, k->block);
    vkr_status s = train ? vkr_batchnorm_train_forward(cmd, &p, bout, bsm, bsi, bx, bg, bb, bm, bv)
                         : vkr_batchnorm_infer_forward(cmd, &p, bout, bx, bg, bb, bm, bv);
    if (!s)
        s = train ? vkr_batchnorm_train_backward(cmd, &p, odx, odg, odb, bdy, bx, bg, bsm, bsi)
                  : vkr_batchnorm_infer_backward(cmd, &p, odx, odg, odb, bdy, bx, bg, bm, bv);
    vkr__bn_test_overrides(0, 0, 0);
    st_submit(c, cmd, s, NULL);
    if (c->s) return;
    double *gd = pd, *bd = pd + C, *md = pd + 2 * C, *vd = pd + 3 * C;
    double *smean = cd, *sinv = cd + C, *dg = cd + 2 * C, *db = cd + 3 * C;
    if (train) {
        vkr_ref_batchnorm_train_forward(out, smean, sinv, xd, gd, bd, md, vd, &p);
        vkr_ref_batchnorm_train_backward(dx, dg, db, dyd, xd, gd, smean, sinv, &p);
    } else {
        vkr_ref_batchnorm_infer_forward(out, xd, gd, bd, md, vd, &p);
        vkr_ref_batchnorm_infer_backward(dx, dg, db, dyd, xd, gd, md, vd, &p);
    }
    double *is = train ? sinv : cd + 4 * C; /* inference: invstd from the running variance */
    for (size_t ch = 0; !train && ch < C; ch++) is[ch] = 1.0 / sqrt(vd[ch] + (double)p.eps);
    bn_floor f = bn_floors(&p, xd, dyd, gd, is);
    st_err fe = {0, 0}, be = {0, 0};
    st_cmp(c, bout, out, total, f.out, &fe);
    if (train) {
        st_cmp(c, bsm, smean, C, f.mean, &fe);
        st_cmp(c, bsi, sinv, C, 0, &fe);
        st_cmp(c, bm, md, C, f.mean, &fe); /* running stats, updated in place */
        st_cmp(c, bv, vd, C, 0, &fe);
    }
    if (odx) st_cmp(c, bdx, dx, total, f.dinp, &be);
    if (odg) st_cmp(c, bdg, dg, C, f.sums, &be);
    if (odb) st_cmp(c, bdb, db, C, f.sums, &be);
    char label[160];
    case_label(label, sizeof label, k, &p, train, pi);
    st_report(c, "forward", label, fe, TOL_BN_FWD);
    st_report(c, "backward", label, be, TOL_BN_BWD);
    if (train && k->constant) bn_check_constant(c, label, &p, x, bt, bout, bsm, odg);
}

/* ------------------------------------------------------ finite differences */

typedef struct {
    vkr_bn_shape p;
    int train;
    const double *mean, *var; /* inference statistics */
} bn_fd_ud;

/* f([inp, gamma, beta]) = forward output */
static void bn_f(void *ud, const double *x, double *out) {
    const bn_fd_ud *f = ud;
    size_t total = (size_t)f->p.n * f->p.c * f->p.h * f->p.w, C = (size_t)f->p.c;
    if (f->train)
        vkr_ref_batchnorm_train_forward(out, NULL, NULL, x, x + total, x + total + C, NULL, NULL, &f->p);
    else
        vkr_ref_batchnorm_infer_forward(out, x, x + total, x + total + C, f->mean, f->var, &f->p);
}

static void bn_fd(st_case *c, const void *kase) {
    const int *d = kase; /* n c h w */
    int train = !strcmp(c->op, "batchnorm_train");
    vkr_bn_shape p = {d[0], d[1], d[2], d[3], 1e-3f, 0.9f, 1};
    size_t total = (size_t)d[0] * d[1] * d[2] * d[3], C = (size_t)d[1], nx = total + 2 * C;
    double *x = st_doubles(c, nx), *r = st_doubles(c, total), *an = st_doubles(c, nx), *st4 = st_doubles(c, 4 * C);
    double *out = st_doubles(c, total);
    if (c->s) return;
    for (size_t i = 0; i < total; i++) x[i] = vkr_rng_uniform(c->rng, -2, 2) + (double)(i % 3);
    for (size_t i = 0; i < C; i++) {
        x[total + i] = vkr_rng_uniform(c->rng, 0.5, 1.5);
        x[total + C + i] = vkr_rng_uniform(c->rng, -1, 1);
        st4[2 * C + i] = vkr_rng_uniform(c->rng, -1, 1);  /* running mean */
        st4[3 * C + i] = vkr_rng_uniform(c->rng, 0.2, 2); /* running var */
    }
    for (size_t i = 0; i < total; i++) r[i] = vkr_rng_uniform(c->rng, -1, 1);
    bn_fd_ud f = {p, train, st4 + 2 * C, st4 + 3 * C};
    if (train) {
        vkr_ref_batchnorm_train_forward(out, st4, st4 + C, x, x + total, x + total + C, NULL, NULL, &p);
        vkr_ref_batchnorm_train_backward(an, an + total, an + total + C, r, x, x + total, st4, st4 + C, &p);
    } else {
        vkr_ref_batchnorm_infer_backward(an, an + total, an + total + C, r, x, x + total, st4 + 2 * C, st4 + 3 * C, &p);
    }
    st_err e = {0, 0};
    st_fd(c, bn_f, &f, x, nx, total, r, an, (int)nx, FD_H_SMOOTH, &e);
    char label[96];
    snprintf(label, sizeof label, "%dx%dx%dx%d (inp, gamma, beta)", d[0], d[1], d[2], d[3]);
    st_report(c, ST_FD, label, e, TOL_FD);
}

static vkr_status check_bn(vkr_context *ctx, vkr_selftest *st, int train) {
    enum { NCASES = sizeof k_cases / sizeof k_cases[0] };
    bn_run_case runs[NCASES];
    for (size_t i = 0; i < NCASES; i++) runs[i] = (bn_run_case){&k_cases[i], i % (sizeof k_params / sizeof k_params[0])};
    static const int fd[][4] = {{2, 3, 3, 2}, {3, 2, 1, 1}, {1, 2, 1, 1}, {1, 1, 2, 3}};
    st_suite S;
    st_suite_init(&S, ctx, st, train ? "batchnorm_train" : "batchnorm_infer", train ? 11 : 7);
    vkr_status s = ST_EACH(&S, runs, bn_run);
    return s ? s : ST_EACH(&S, fd, bn_fd);
}

vkr_status vkr_check_batchnorm_infer(vkr_context *ctx, vkr_selftest *st) { return check_bn(ctx, st, 0); }
vkr_status vkr_check_batchnorm_train(vkr_context *ctx, vkr_selftest *st) { return check_bn(ctx, st, 1); }
