/* Batch norm (inference and training) and global average pooling on the device
 * vs runtime/ref/batchnorm_ref.c and runtime/ref/gap_ref.c, and the reference
 * backwards vs central finite differences (double).
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
#include "ref/batchnorm_ref.h"
#include "ref/gap_ref.h"
#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vkr__bn_test_overrides(uint64_t chunk_floats, int path, uint32_t block);

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
#define N_PARAMS (sizeof k_params / sizeof k_params[0])

/* fp32 unit roundoff */
#define U32 0x1p-24
/* Longest accumulation chain in these cases: a serial per-invocation sum of up to
 * ceil(20000 / 256) = 79 terms, 8 tree levels over 256 invocations, and a few merges of block /
 * chunk partials: <= 96 roundings, each of relative size u in the scale of the terms. */
#define BN_ACC_LEN 96
/* Forward (out, saved mean / invstd, running stats): the mean and M2 carry <= BN_ACC_LEN * u
 * relative to their scale (max |x|, sum of squares); xhat = (x - mean) * invstd adds the
 * rounding of the subtraction, the sqrt and the device's division (up to 2.5 ulp in Vulkan),
 * and the output's fma a last one: 4 * 96 * u = 2.3e-5. */
#define BN_FWD_TOL (4 * BN_ACC_LEN * U32)
/* Backward: dinp = gamma * invstd * (dout - S1/n - xhat * S2/n) combines two sums of the
 * forward's accuracy (S1, S2 each <= BN_ACC_LEN * u relative to sum |dout|), xhat's forward
 * error times S2/n, and the cancellation between the three terms (each up to max |dout|):
 * 16 * 96 * u = 9.2e-5. */
#define BN_BWD_TOL (16 * BN_ACC_LEN * U32)

typedef struct {
    vkr_buffer *b[16];
    int n;
} buf_list;

static vkr_status up(vkr_context *ctx, buf_list *l, const float *x, size_t n, vkr_buffer **out) {
    vkr_status s = vkr_upload_new(ctx, x, n, out);
    if (!s) l->b[l->n++] = *out;
    return s;
}

static void free_list(buf_list *l) {
    for (int i = 0; i < l->n; i++) vkr_buffer_destroy(l->b[i]);
    l->n = 0;
}

/* Folds the comparison of got vs ref into (ma, mr) (max over tensors, each relative to
 * max(max |ref|, floor), see vkr_compare_scaled). */
static vkr_status download_fold(vkr_buffer *b, const double *ref, size_t n, double floor, double *ma, double *mr) {
    float *got = NULL;
    vkr_status s = vkr_download_new(b, n, &got);
    if (!s) {
        double a, r;
        vkr_compare_scaled(got, ref, n, floor, &a, &r);
        if (a > *ma || a != a) *ma = a;
        if (r > *mr || r != r) *mr = r;
    }
    free(got);
    return s;
}

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

/* Scales the errors of each tensor are measured against (floors of vkr_compare_scaled):
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
static vkr_status bn_check_constant(vkr_selftest *st, const char *label, const vkr_bn_shape *p, const float *x,
                                    const float *beta, vkr_buffer *bout, vkr_buffer *bsm, vkr_buffer *bdg) {
    size_t C = (size_t)p->c, hw = (size_t)p->h * p->w, total = (size_t)p->n * C * hw;
    float *out = NULL, *sm = NULL, *dg = NULL;
    vkr_status s = vkr_download_new(bout, total, &out);
    if (!s) s = vkr_download_new(bsm, C, &sm);
    if (!s && bdg) s = vkr_download_new(bdg, C, &dg);
    if (!s) {
        double bad = 0;
        for (size_t i = 0; i < total; i++) bad = fmax(bad, fabs((double)out[i] - beta[(i / hw) % C]));
        for (size_t c = 0; c < C; c++) {
            bad = fmax(bad, fabs((double)sm[c] - x[c * hw]));
            if (dg) bad = fmax(bad, fabs((double)dg[c]));
        }
        vkr_selftest_add(st, "batchnorm_train", "constant input: out = beta, dgamma = 0", label, bad, bad, 0);
    }
    free(out), free(sm), free(dg);
    return s;
}

/* One case: forward + backward on the device vs the reference.
 * train = 0: inference mode; train = 1: training mode; scalar parameters k_params[pi]. */
static vkr_status run_bn_case(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, const bn_case *k, int train, size_t pi) {
    const char *opname = train ? "batchnorm_train" : "batchnorm_infer";
    size_t C = (size_t)k->c, total = (size_t)k->n * k->c * k->h * k->w;
    vkr_bn_shape p = {k->n, k->c, k->h, k->w, k_params[pi].eps, k_params[pi].momentum, k_params[pi].unbiased};
    float *x = malloc(total * 4), *dy = malloc(total * 4), *cp = malloc(C * 4 * 4), *junk = malloc(total * 4);
    double *out = malloc(total * 8), *dx = malloc(total * 8), *cd = malloc(C * 5 * 8);
    double *xd = NULL, *dyd = NULL, *pd = NULL;
    buf_list L = {{0}, 0};
    vkr_cmd *cmd = NULL;
    vkr_buffer *bx = NULL, *bdy = NULL, *bg = NULL, *bb = NULL, *bm = NULL, *bv = NULL, *bout = NULL, *bdx = NULL,
               *bsm = NULL, *bsi = NULL, *bdg = NULL, *bdb = NULL;
    vkr_status s = (x && dy && cp && junk && out && dx && cd) ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) {
        float *g = cp, *bt = cp + C, *m = cp + 2 * C, *v = cp + 3 * C;
        fill_inputs(rng, x, k);
        vkr_rng_fill(rng, dy, total, -1, 1);
        vkr_rng_fill(rng, g, C, 0.5, 1.5);
        vkr_rng_fill(rng, bt, C, -1, 1);
        vkr_rng_fill(rng, m, C, -1, 1);  /* running mean */
        vkr_rng_fill(rng, v, C, 0.2, 2); /* running var */
        for (size_t i = 0; i < total; i++) junk[i] = 1e30f; /* outputs start as garbage */
        xd = vkr_to_double(x, total);
        dyd = vkr_to_double(dy, total);
        pd = vkr_to_double(cp, 4 * C);
        if (!xd || !dyd || !pd) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        if (!s) s = up(ctx, &L, x, total, &bx);
        if (!s) s = up(ctx, &L, dy, total, &bdy);
        if (!s) s = up(ctx, &L, g, C, &bg);
        if (!s) s = up(ctx, &L, bt, C, &bb);
        if (!s) s = up(ctx, &L, m, C, &bm);
        if (!s) s = up(ctx, &L, v, C, &bv);
        if (!s) s = up(ctx, &L, junk, total, &bout);
        if (!s) s = up(ctx, &L, junk, total, &bdx);
        if (!s) s = up(ctx, &L, junk, C, &bsm);
        if (!s) s = up(ctx, &L, junk, C, &bsi);
        if (!s) s = up(ctx, &L, junk, C, &bdg);
        if (!s) s = up(ctx, &L, junk, C, &bdb);
    }
    vkr_buffer *odx = (k->nulls & NO_DINP) ? NULL : bdx, *odg = (k->nulls & NO_DGAMMA) ? NULL : bdg,
               *odb = (k->nulls & NO_DBETA) ? NULL : bdb;
    if (!s) s = vkr_cmd_begin(ctx, &cmd);
    vkr__bn_test_overrides(k->chunk, k->path, k->block);
    if (!s && train) s = vkr_batchnorm_train_forward(cmd, &p, bout, bsm, bsi, bx, bg, bb, bm, bv);
    if (!s && train) s = vkr_batchnorm_train_backward(cmd, &p, odx, odg, odb, bdy, bx, bg, bsm, bsi);
    if (!s && !train) s = vkr_batchnorm_infer_forward(cmd, &p, bout, bx, bg, bb, bm, bv);
    if (!s && !train) s = vkr_batchnorm_infer_backward(cmd, &p, odx, odg, odb, bdy, bx, bg, bm, bv);
    vkr__bn_test_overrides(0, 0, 0);
    if (!s) s = vkr_cmd_submit(cmd);
    if (!s) {
        double *gd = pd, *bd = pd + C, *md = pd + 2 * C, *vd = pd + 3 * C;
        double *smean = cd, *sinv = cd + C, *dg = cd + 2 * C, *db = cd + 3 * C;
        double fa = 0, fr = 0, ba = 0, br = 0;
        if (train) {
            vkr_ref_batchnorm_train_forward(out, smean, sinv, xd, gd, bd, md, vd, &p);
            vkr_ref_batchnorm_train_backward(dx, dg, db, dyd, xd, gd, smean, sinv, &p);
        } else {
            vkr_ref_batchnorm_infer_forward(out, xd, gd, bd, md, vd, &p);
            vkr_ref_batchnorm_infer_backward(dx, dg, db, dyd, xd, gd, md, vd, &p);
        }
        double *is = train ? sinv : cd + 4 * C; /* inference: invstd from the running variance */
        for (size_t c = 0; !train && c < C; c++) is[c] = 1.0 / sqrt(vd[c] + (double)p.eps);
        bn_floor f = bn_floors(&p, xd, dyd, gd, is);
        s = download_fold(bout, out, total, f.out, &fa, &fr);
        if (!s && train) s = download_fold(bsm, smean, C, f.mean, &fa, &fr);
        if (!s && train) s = download_fold(bsi, sinv, C, 0, &fa, &fr);
        if (!s && train) s = download_fold(bm, md, C, f.mean, &fa, &fr); /* running stats, updated in place */
        if (!s && train) s = download_fold(bv, vd, C, 0, &fa, &fr);
        if (!s && odx) s = download_fold(bdx, dx, total, f.dinp, &ba, &br);
        if (!s && odg) s = download_fold(bdg, dg, C, f.sums, &ba, &br);
        if (!s && odb) s = download_fold(bdb, db, C, f.sums, &ba, &br);
        char label[160];
        case_label(label, sizeof label, k, &p, train, pi);
        if (!s) {
            vkr_selftest_add(st, opname, "forward", label, fa, fr, BN_FWD_TOL);
            vkr_selftest_add(st, opname, "backward", label, ba, br, BN_BWD_TOL);
        }
        if (!s && train && k->constant) s = bn_check_constant(st, label, &p, x, cp + C, bout, bsm, odg);
    }
    vkr_cmd_free(cmd);
    free_list(&L);
    free(x), free(dy), free(cp), free(junk), free(out), free(dx), free(cd), free(xd), free(dyd), free(pd);
    return s;
}

/* ------------------------------------------------------ finite differences */

typedef struct {
    vkr_bn_shape p;
    int train;
    const double *mean, *var; /* inference statistics */
} bn_fd;

/* f([inp, gamma, beta]) = forward output */
static void bn_fd_fn(void *ud, const double *x, double *out) {
    const bn_fd *f = ud;
    size_t total = (size_t)f->p.n * f->p.c * f->p.h * f->p.w, C = (size_t)f->p.c;
    if (f->train)
        vkr_ref_batchnorm_train_forward(out, NULL, NULL, x, x + total, x + total + C, NULL, NULL, &f->p);
    else
        vkr_ref_batchnorm_infer_forward(out, x, x + total, x + total + C, f->mean, f->var, &f->p);
}

static vkr_status bn_fd_case(vkr_selftest *st, vkr_rng *rng, int train, int n, int c, int h, int w) {
    vkr_bn_shape p = {n, c, h, w, 1e-3f, 0.9f, 1};
    size_t total = (size_t)n * c * h * w, C = (size_t)c, nx = total + 2 * C;
    double *x = malloc(nx * 8), *r = malloc(total * 8), *an = malloc(nx * 8), *st4 = malloc(4 * C * 8);
    if (!x || !r || !an || !st4) {
        free(x), free(r), free(an), free(st4);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < total; i++) x[i] = vkr_rng_uniform(rng, -2, 2) + (double)(i % 3);
    for (size_t i = 0; i < C; i++) {
        x[total + i] = vkr_rng_uniform(rng, 0.5, 1.5);
        x[total + C + i] = vkr_rng_uniform(rng, -1, 1);
        st4[2 * C + i] = vkr_rng_uniform(rng, -1, 1);  /* running mean */
        st4[3 * C + i] = vkr_rng_uniform(rng, 0.2, 2); /* running var */
    }
    for (size_t i = 0; i < total; i++) r[i] = vkr_rng_uniform(rng, -1, 1);
    double *out = malloc(total * 8);
    if (!out) {
        free(x), free(r), free(an), free(st4);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    bn_fd f = {p, train, st4 + 2 * C, st4 + 3 * C};
    if (train) {
        vkr_ref_batchnorm_train_forward(out, st4, st4 + C, x, x + total, x + total + C, NULL, NULL, &p);
        vkr_ref_batchnorm_train_backward(an, an + total, an + total + C, r, x, x + total, st4, st4 + C, &p);
    } else {
        vkr_ref_batchnorm_infer_backward(an, an + total, an + total + C, r, x, x + total, st4 + 2 * C, st4 + 3 * C, &p);
    }
    double ma, mr;
    vkr_fd_check(bn_fd_fn, &f, x, nx, total, r, an, (int)nx, 1e-5, &ma, &mr);
    char label[96];
    snprintf(label, sizeof label, "%dx%dx%dx%d (inp, gamma, beta)", n, c, h, w);
    vkr_selftest_add(st, train ? "batchnorm_train" : "batchnorm_infer", "backward ref vs finite diff", label, ma, mr, 1e-6);
    free(x), free(r), free(an), free(st4), free(out);
    return VKR_OK;
}

static vkr_status check_bn(vkr_context *ctx, vkr_selftest *st, int train) {
    vkr_rng rng;
    vkr_rng_seed(&rng, train ? 11 : 7);
    vkr_status s;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++)
        if ((s = run_bn_case(ctx, st, &rng, &k_cases[i], train, i % N_PARAMS))) return s;
    static const int fd_shapes[][4] = {{2, 3, 3, 2}, {3, 2, 1, 1}, {1, 2, 1, 1}, {1, 1, 2, 3}};
    for (size_t i = 0; i < sizeof fd_shapes / sizeof fd_shapes[0]; i++)
        if ((s = bn_fd_case(st, &rng, train, fd_shapes[i][0], fd_shapes[i][1], fd_shapes[i][2], fd_shapes[i][3])))
            return s;
    return VKR_OK;
}

vkr_status vkr_check_batchnorm_infer(vkr_context *ctx, vkr_selftest *st) { return check_bn(ctx, st, 0); }
vkr_status vkr_check_batchnorm_train(vkr_context *ctx, vkr_selftest *st) { return check_bn(ctx, st, 1); }

/* --------------------------------------------------------------------- gap */

static void gap_fd_fn(void *ud, const double *x, double *out) {
    const int *d = ud;
    vkr_ref_gap_forward(d[0], d[1], d[2], out, x);
}

vkr_status vkr_check_gap(vkr_context *ctx, vkr_selftest *st) {
    static const struct { int n, c, hw; uint64_t chunk; } cases[] = {
        {1, 1, 1, 0},       {3, 127, 1, 0},  {3, 7, 49, 0},   {1, 13, 15, 0},     {2, 3, 256, 0},
        {2, 3, 257, 0},     {3, 5, 3136, 0}, {1, 3, 12544, 0}, {3, 7, 49, 1000}, {2, 3, 300, 700},
        {3, 5, 13, 100}, /* chunks of 7 planes: unaligned sub-range offsets */
    };
    vkr_rng rng;
    vkr_rng_seed(&rng, 5);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int n = cases[k].n, c = cases[k].c, hw = cases[k].hw;
        size_t planes = (size_t)n * c, total = planes * hw;
        float *x = malloc(total * 4), *dy = malloc(planes * 4);
        double *out = malloc(planes * 8), *dx = malloc(total * 8);
        buf_list L = {{0}, 0};
        vkr_buffer *bx, *bout, *bdy, *bdx;
        vkr_cmd *cmd = NULL;
        vkr_status s = (x && dy && out && dx) ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        if (!s) {
            vkr_rng_fill(&rng, x, total, -1, 3);
            vkr_rng_fill(&rng, dy, planes, -1, 1);
            s = up(ctx, &L, x, total, &bx);
        }
        if (!s) s = up(ctx, &L, dy, planes, &bdy);
        if (!s) s = up(ctx, &L, dy, planes, &bout);
        if (!s) s = up(ctx, &L, x, total, &bdx);
        vkr__bn_test_overrides(cases[k].chunk, 0, 0);
        if (!s) s = vkr_cmd_begin(ctx, &cmd);
        if (!s) s = vkr_gap_forward(cmd, n, c, hw, bout, bx);
        if (!s) s = vkr_gap_backward(cmd, n, c, hw, bdx, bdy);
        vkr__bn_test_overrides(0, 0, 0);
        if (!s) s = vkr_cmd_submit(cmd);
        if (!s) {
            double *xd = vkr_to_double(x, total), *dyd = vkr_to_double(dy, planes);
            if (xd && dyd) {
                vkr_ref_gap_forward(n, c, hw, out, xd);
                vkr_ref_gap_backward(n, c, hw, dx, dyd);
                double fa = 0, fr = 0, ba = 0, br = 0;
                /* floors: a mean's rounding is relative to the data (|x| < 3 here), not the mean */
                s = download_fold(bout, out, planes, 3.0, &fa, &fr);
                if (!s) s = download_fold(bdx, dx, total, 0, &ba, &br);
                char label[64];
                snprintf(label, sizeof label, "%dx%dx%d%s", n, c, hw, cases[k].chunk ? " chunked" : "");
                if (!s) vkr_selftest_add(st, "gap", "forward", label, fa, fr, 1e-5);
                if (!s) vkr_selftest_add(st, "gap", "backward", label, ba, br, 1e-6);
            } else {
                s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            }
            free(xd);
            free(dyd);
        }
        vkr_cmd_free(cmd);
        free_list(&L);
        free(x), free(dy), free(out), free(dx);
        if (s) return s;
    }
    /* reference backward vs finite differences */
    int d[3] = {2, 3, 5};
    size_t total = 30, planes = 6;
    double x[30], r[6], an[30], ma, mr;
    for (size_t i = 0; i < total; i++) x[i] = vkr_rng_uniform(&rng, -1, 1);
    for (size_t i = 0; i < planes; i++) r[i] = vkr_rng_uniform(&rng, -1, 1);
    vkr_ref_gap_backward(d[0], d[1], d[2], an, r);
    vkr_fd_check(gap_fd_fn, d, x, total, planes, r, an, (int)total, 1e-5, &ma, &mr);
    vkr_selftest_add(st, "gap", "backward ref vs finite diff", "2x3x5", ma, mr, 1e-6);
    return VKR_OK;
}
