/* softmax, softmax_ce, sgd and adam on the device vs runtime/ref/{softmax,softmax_ce,sgd,adam}_ref.c,
 * and the reference cross-entropy gradient vs central finite differences. */
#include "ref/adam_ref.h"
#include "ref/sgd_ref.h"
#include "ref/softmax_ce_ref.h"
#include "ref/softmax_ref.h"
#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* runtime/ops/softmax.c: thread-local cap on the chunk size (0 = off), to force the chunked paths. */
void vkr__loss_force_chunk(uint64_t floats);

#define OOM() vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory")

static vkr_status submit_free(vkr_cmd *cmd, vkr_status s) {
    if (!s) s = vkr_cmd_submit(cmd);
    vkr_cmd_free(cmd);
    return s;
}

/* ------------------------------------------------------------ test data */
enum { T_ONEHOT, T_SOFT, T_TIES, T_RAW };
static const char *const k_tname[] = {"onehot", "soft", "ties", "raw"};

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
        if (tmode == T_ONEHOT) {
            int c = 0;
            if (vkr_rng_uniform(r, 0, 1) < 0.5) {
                for (int j = 1; j < k; j++)
                    if (zi[j] > zi[c]) c = j;
            } else {
                c = (int)vkr_rng_uniform(r, 0, k);
                if (c >= k) c = k - 1;
            }
            for (int j = 0; j < k; j++) ti[j] = j == c ? 1.0f : 0.0f;
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

vkr_status vkr_check_softmax(vkr_context *ctx, vkr_selftest *st) {
    static const sm_case cases[] = {
        {1, 1, 3, 0},     {3, 2, 3, 0},     {32, 5, 3, 0},     {3, 10, 80, 0},   {1000, 10, 3, 0},
        {1000, 10, 80, 0}, {7, 33, 3, 0},   {5, 64, 80, 0},    {32, 1000, 3, 0}, {3, 1000, 80, 0},
        {1, 1000, 3, 0},  {1000, 127, 3, 0}, {70001, 33, 3, 0}, {1000, 7, 3, 1024}, {7, 1001, 80, 1024},
    };
    vkr_rng rng;
    vkr_rng_seed(&rng, 11);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const sm_case *q = &cases[c];
        size_t n = (size_t)q->b * q->k;
        float *x = malloc(n * 4), *got = NULL;
        double *xd = NULL, *ref = malloc(n * sizeof *ref);
        vkr_buffer *bx = NULL, *by = NULL;
        vkr_cmd *cmd = NULL;
        vkr_status s = x && ref ? VKR_OK : OOM();
        if (!s) {
            make_logits(&rng, x, n, q->scale, T_SOFT);
            s = vkr_upload_new(ctx, x, n, &bx);
        }
        if (!s) s = vkr_buffer_create(ctx, n * 4, &by);
        if (!s && !(s = vkr_cmd_begin(ctx, &cmd))) {
            vkr__loss_force_chunk(q->chunk);
            s = vkr_softmax_forward(cmd, q->b, q->k, by, bx);
            vkr__loss_force_chunk(0);
            s = submit_free(cmd, s);
        }
        if (!s) s = vkr_download_new(by, n, &got);
        if (!s && !(xd = vkr_to_double(x, n))) s = OOM();
        if (!s) {
            double ma, mr;
            char shape[64], cl[32];
            vkr_ref_softmax_forward(q->b, q->k, ref, xd);
            vkr_compare(got, ref, n, &ma, &mr);
            chunk_label(cl, sizeof cl, q->chunk);
            snprintf(shape, sizeof shape, "%dx%d%s%s", q->b, q->k, q->scale > 10 ? " ±80" : "", cl);
            vkr_selftest_add(st, "softmax", "forward", shape, ma, mr, 1e-5);
        }
        vkr_buffer_destroy(bx);
        vkr_buffer_destroy(by);
        free(x);
        free(got);
        free(xd);
        free(ref);
        if (s) return s;
    }
    return VKR_OK;
}

/* ------------------------------------------------------------ softmax_ce */
typedef struct {
    int b, k;
    double scale;
    int tmode;
    uint64_t chunk;
    int inplace_bwd; /* backward writes dlogits over probs */
} ce_case;

typedef struct {
    int b, k;
    const double *t;
    double *probs;
} ce_fd;

static void ce_fd_loss(void *ud, const double *x, double *out) {
    ce_fd *f = ud;
    double res[2];
    vkr_ref_softmax_ce_forward(f->b, f->k, res, f->probs, x, f->t);
    out[0] = res[0];
}

static vkr_status ce_case_run(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, const ce_case *q) {
    size_t n = (size_t)q->b * q->k;
    float *z = malloc(n * 4), *t = malloc(n * 4), *gp = NULL, *gd = NULL;
    float res[2] = {NAN, NAN};
    double *zd = NULL, *td = NULL, *pref = malloc(n * sizeof(double)), *dref = malloc(n * sizeof(double)), *gpd = NULL;
    vkr_buffer *bz = NULL, *bt = NULL, *bp = NULL, *br = NULL, *bd = NULL;
    vkr_cmd *cmd = NULL;
    vkr_status s = z && t && pref && dref ? VKR_OK : OOM();
    if (!s) {
        make_logits(rng, z, n, q->scale, q->tmode);
        make_targets(rng, t, z, q->b, q->k, q->tmode);
        if (!(zd = vkr_to_double(z, n)) || !(td = vkr_to_double(t, n))) s = OOM();
    }
    if (!s) s = vkr_upload_new(ctx, z, n, &bz);
    if (!s) s = vkr_upload_new(ctx, t, n, &bt);
    if (!s) s = vkr_buffer_create(ctx, n * 4, &bp);
    if (!s) s = vkr_upload_new(ctx, res, 2, &br); /* NaN: the op must overwrite */
    if (!s && !(s = vkr_cmd_begin(ctx, &cmd))) {
        vkr__loss_force_chunk(q->chunk);
        s = vkr_softmax_ce_forward(cmd, q->b, q->k, br, bp, bz, bt);
        vkr__loss_force_chunk(0);
        s = submit_free(cmd, s);
    }
    if (!s) s = vkr_download_new(bp, n, &gp);
    if (!s) s = vkr_buffer_download(br, 0, res, sizeof res);
    char shape[80], cl[32];
    chunk_label(cl, sizeof cl, q->chunk);
    snprintf(shape, sizeof shape, "%dx%d%s %s%s%s", q->b, q->k, q->scale > 10 ? " ±80" : "", k_tname[q->tmode], cl,
             q->inplace_bwd ? " inplace" : "");
    if (!s) {
        double rres[2], ma, mr;
        vkr_ref_softmax_ce_forward(q->b, q->k, rres, pref, zd, td);
        vkr_compare(gp, pref, n, &ma, &mr);
        /* loss: relative (absolute below 1, where a float log(1 + tiny) may round to 0) */
        double dl = fabs((double)res[0] - rres[0]), rl = dl / (fabs(rres[0]) > 1 ? fabs(rres[0]) : 1);
        if (dl != dl) rl = NAN;
        if (dl > ma || dl != dl) ma = dl;
        if (rl > mr || rl != rl) mr = rl;
        if ((double)res[1] != rres[1]) { /* correct count: exact */
            fprintf(stderr, "softmax_ce %s: correct count %g, reference %g\n", shape, (double)res[1], rres[1]);
            mr = INFINITY;
        }
        vkr_selftest_add(st, "softmax_ce", "forward", shape, ma, mr, 1e-5);
    }
    /* backward from the device's probs */
    if (!s && !(gpd = vkr_to_double(gp, n))) s = OOM();
    if (!s && !q->inplace_bwd) s = vkr_buffer_create(ctx, n * 4, &bd);
    if (!s && !(s = vkr_cmd_begin(ctx, &cmd))) {
        vkr__loss_force_chunk(q->chunk);
        s = vkr_softmax_ce_backward(cmd, q->b, q->k, q->inplace_bwd ? bp : bd, bp, bt);
        vkr__loss_force_chunk(0);
        s = submit_free(cmd, s);
    }
    if (!s) s = vkr_download_new(q->inplace_bwd ? bp : bd, n, &gd);
    if (!s) {
        double ma, mr;
        vkr_ref_softmax_ce_backward(q->b, q->k, dref, gpd, td);
        vkr_compare(gd, dref, n, &ma, &mr);
        vkr_selftest_add(st, "softmax_ce", "backward", shape, ma, mr, 1e-6);
    }
    vkr_buffer_destroy(bz);
    vkr_buffer_destroy(bt);
    vkr_buffer_destroy(bp);
    vkr_buffer_destroy(br);
    vkr_buffer_destroy(bd);
    free(z);
    free(t);
    free(gp);
    free(gd);
    free(zd);
    free(td);
    free(pref);
    free(dref);
    free(gpd);
    return s;
}

/* Invalid shapes / aliasing must be rejected with VKR_ERR_INVALID (recorded as a forward case). */
static vkr_status ce_bad_args(vkr_context *ctx, vkr_selftest *st) {
    vkr_buffer *a = NULL, *b = NULL, *r = NULL;
    vkr_cmd *cmd = NULL;
    vkr_status s = vkr_buffer_create(ctx, 40, &a);
    if (!s) s = vkr_buffer_create(ctx, 40, &b);
    if (!s) s = vkr_buffer_create(ctx, 8, &r);
    if (!s) s = vkr_cmd_begin(ctx, &cmd);
    if (!s) {
        int ok = vkr_softmax_ce_forward(cmd, 0, 5, r, a, b, b) == VKR_ERR_INVALID &&
                 vkr_softmax_ce_forward(cmd, 2, 5, r, a, a, b) == VKR_ERR_INVALID &&     /* probs aliases logits */
                 vkr_softmax_ce_forward(cmd, 3, 5, r, a, b, b) == VKR_ERR_INVALID &&     /* buffers too small */
                 vkr_softmax_ce_forward(cmd, 2, 5, a, r, b, b) == VKR_ERR_INVALID &&     /* probs too small */
                 vkr_softmax_forward(cmd, 2, -1, a, b) == VKR_ERR_INVALID &&
                 vkr_softmax_ce_backward(cmd, 2, 5, a, NULL, b) == VKR_ERR_INVALID;
        vkr_selftest_add(st, "softmax_ce", "forward", "bad args rejected", 0, ok ? 0 : INFINITY, 1e-5);
        s = submit_free(cmd, VKR_OK);
    }
    vkr_buffer_destroy(a);
    vkr_buffer_destroy(b);
    vkr_buffer_destroy(r);
    return s;
}

vkr_status vkr_check_softmax_ce(vkr_context *ctx, vkr_selftest *st) {
    static const ce_case cases[] = {
        {1, 1, 3, T_ONEHOT, 0, 0},     {3, 2, 3, T_SOFT, 0, 0},       {32, 5, 3, T_ONEHOT, 0, 0},
        {32, 10, 80, T_ONEHOT, 0, 0},  {3, 10, 80, T_SOFT, 0, 1},     {1000, 10, 3, T_ONEHOT, 0, 0},
        {1000, 10, 3, T_TIES, 0, 0},   {7, 33, 3, T_TIES, 0, 0},      {32, 1000, 80, T_SOFT, 0, 0},
        {3, 1000, 80, T_ONEHOT, 0, 0}, {1000, 1000, 3, T_ONEHOT, 0, 0}, {3, 7, 80, T_RAW, 0, 0}, {1000, 7, 3, T_ONEHOT, 1024, 0},
        {5, 1001, 80, T_SOFT, 1024, 1}, {300, 13, 3, T_RAW, 0, 0},
    };
    vkr_rng rng;
    vkr_rng_seed(&rng, 12);
    vkr_status s;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        if ((s = ce_case_run(ctx, st, &rng, &cases[c]))) return s;
    if ((s = ce_bad_args(ctx, st))) return s;

    /* reference backward vs central finite differences of the reference loss ((probs - targets) / batch
     * is the gradient for target rows summing to 1, as with one-hot or soft labels) */
    static const struct { int b, k; double scale; int tmode; } fd[] = {
        {3, 5, 3, T_SOFT}, {2, 1, 3, T_ONEHOT}, {4, 7, 20, T_ONEHOT}, {2, 10, 1, T_TIES}, {3, 4, 80, T_SOFT}};
    for (size_t c = 0; c < sizeof fd / sizeof fd[0]; c++) {
        size_t n = (size_t)fd[c].b * fd[c].k;
        float *z = malloc(n * 4), *t = malloc(n * 4);
        double *zd = NULL, *td = NULL, *p = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
        s = z && t && p && g ? VKR_OK : OOM();
        if (!s) {
            make_logits(&rng, z, n, fd[c].scale, fd[c].tmode == T_TIES ? T_SOFT : fd[c].tmode);
            make_targets(&rng, t, z, fd[c].b, fd[c].k, fd[c].tmode);
            if (!(zd = vkr_to_double(z, n)) || !(td = vkr_to_double(t, n))) s = OOM();
        }
        if (!s) {
            double res[2], one = 1, ma, mr;
            char shape[64];
            vkr_ref_softmax_ce_forward(fd[c].b, fd[c].k, res, p, zd, td);
            vkr_ref_softmax_ce_backward(fd[c].b, fd[c].k, g, p, td);
            ce_fd f = {fd[c].b, fd[c].k, td, p};
            vkr_fd_check(ce_fd_loss, &f, zd, n, 1, &one, g, (int)n, 1e-5, &ma, &mr);
            snprintf(shape, sizeof shape, "%dx%d%s %s", fd[c].b, fd[c].k, fd[c].scale > 10 ? " ±big" : "",
                     k_tname[fd[c].tmode]);
            vkr_selftest_add(st, "softmax_ce", "backward ref vs finite diff", shape, ma, mr, 1e-6);
        }
        free(z);
        free(t);
        free(zd);
        free(td);
        free(p);
        free(g);
        if (s) return s;
    }
    return VKR_OK;
}

/* ------------------------------------------------------------ optimizers */
#define OPT_STEPS 5

/* Runs OPT_STEPS consecutive steps on the device and in the reference with fresh
 * random gradients in [-1, 1) each step (params start in [-pscale, pscale), state
 * at 0); after every step compares param, the total displacement param - param0
 * (so an error in a small update is not hidden by the size of param; relative to
 * max(max |displacement|, step * lr)) and the state (velocity, or m and v).  The
 * float rounding of param (~ulp(param) per step) bounds how well the device can
 * match the displacement; Adam's updates are ~lr whatever the gradient, so its
 * params start small to keep that bound well below the tolerance at lr = 1e-3. */
static vkr_status optim_case(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, int adam, vkr_optim_params o,
                             int use_velocity, uint64_t n, uint64_t chunk, const char *label, double pscale) {
    size_t nst = adam ? 2 : use_velocity ? 1 : 0;
    float *p0 = malloc(n * 4), *g = malloc(n * 4), *got = malloc(n * 4), *zero = calloc(n, 4);
    double *pd = NULL, *gd = malloc(n * sizeof(double)), *sd[2] = {calloc(n, sizeof(double)), calloc(n, sizeof(double))};
    double *dg = malloc(n * sizeof(double)), *dr = malloc(n * sizeof(double));
    vkr_buffer *bp = NULL, *bg = NULL, *bs[2] = {NULL, NULL};
    double max_abs = 0, max_rel = 0;
    vkr_status s = p0 && g && got && zero && gd && sd[0] && sd[1] && dg && dr ? VKR_OK : OOM();
    if (!s) {
        vkr_rng_fill(rng, p0, n, -pscale, pscale);
        if (!(pd = vkr_to_double(p0, n))) s = OOM();
    }
    if (!s) s = vkr_upload_new(ctx, p0, n, &bp);
    if (!s) s = vkr_buffer_create(ctx, n * 4, &bg);
    for (size_t j = 0; j < nst && !s; j++) s = vkr_upload_new(ctx, zero, n, &bs[j]);
    for (uint32_t step = 1; step <= OPT_STEPS && !s; step++) {
        vkr_rng_fill(rng, g, n, -1, 1);
        for (uint64_t i = 0; i < n; i++) gd[i] = g[i];
        o.step = step;
        s = vkr_buffer_upload(bg, 0, g, n * 4);
        vkr_cmd *cmd = NULL;
        if (!s && !(s = vkr_cmd_begin(ctx, &cmd))) {
            vkr__loss_force_chunk(chunk);
            s = adam ? vkr_adam_step(cmd, n, &o, bp, bg, bs[0], bs[1]) : vkr_sgd_step(cmd, n, &o, bp, bg, bs[0]);
            vkr__loss_force_chunk(0);
            s = submit_free(cmd, s);
        }
        if (s) break;
        if (adam) vkr_ref_adam_step(n, &o, pd, gd, sd[0], sd[1]);
        else vkr_ref_sgd_step(n, &o, pd, gd, use_velocity ? sd[0] : NULL);
        double ma, mr;
        if ((s = vkr_buffer_download(bp, 0, got, n * 4))) break;
        vkr_compare(got, pd, n, &ma, &mr);
        max_abs = fmax(max_abs, ma), max_rel = ma != ma ? NAN : fmax(max_rel, mr);
        double dmax = step * (double)o.lr; /* floor: a chance cancellation must not shrink the scale */
        for (uint64_t i = 0; i < n; i++) {
            dg[i] = (double)got[i] - p0[i], dr[i] = pd[i] - p0[i];
            if (fabs(dr[i]) > dmax) dmax = fabs(dr[i]);
        }
        vkr_compare_d(dg, dr, n, &ma, &mr);
        mr = ma != ma ? NAN : ma / dmax;
        max_abs = fmax(max_abs, ma), max_rel = ma != ma ? NAN : fmax(max_rel, mr);
        for (size_t j = 0; j < nst; j++) {
            if ((s = vkr_buffer_download(bs[j], 0, got, n * 4))) break;
            vkr_compare(got, sd[j], n, &ma, &mr);
            max_abs = fmax(max_abs, ma), max_rel = ma != ma ? NAN : fmax(max_rel, mr);
        }
        if (max_rel != max_rel) break;
    }
    if (!s) {
        char shape[96], cl[32];
        chunk_label(cl, sizeof cl, chunk);
        snprintf(shape, sizeof shape, "%s n=%llu%s", label, (unsigned long long)n, cl);
        vkr_selftest_add(st, adam ? "adam" : "sgd", "step", shape, max_abs, max_rel, 1e-5);
    }
    vkr_buffer_destroy(bp);
    vkr_buffer_destroy(bg);
    vkr_buffer_destroy(bs[0]);
    vkr_buffer_destroy(bs[1]);
    free(p0);
    free(g);
    free(got);
    free(zero);
    free(pd);
    free(gd);
    free(sd[0]);
    free(sd[1]);
    free(dg);
    free(dr);
    return s;
}

static const uint64_t k_opt_sizes[] = {1, 7, 1000, 100003};

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
    vkr_rng rng;
    vkr_rng_seed(&rng, 13);
    vkr_status s;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vkr_optim_params o = {.lr = cases[c].lr, .momentum = cases[c].momentum, .nesterov = cases[c].nesterov,
                              .l2 = cases[c].l2, .weight_decay = cases[c].wd};
        for (size_t k = 0; k < 4; k++) {
            uint64_t n = cases[c].all_sizes ? k_opt_sizes[k] : k == 0 ? (cases[c].chunk ? 100003 : 1000) : 0;
            if (!n) continue;
            if ((s = optim_case(ctx, st, &rng, 0, o, cases[c].velocity, n, cases[c].chunk, cases[c].label, 1.0))) return s;
        }
    }
    /* momentum without a velocity buffer, n = 0: VKR_ERR_INVALID */
    vkr_buffer *b = NULL;
    vkr_cmd *cmd = NULL;
    s = vkr_buffer_create(ctx, 64, &b);
    if (!s) s = vkr_cmd_begin(ctx, &cmd);
    if (!s) {
        vkr_optim_params o = {.lr = 0.1f, .momentum = 0.9f};
        int ok = vkr_sgd_step(cmd, 16, &o, b, b, NULL) == VKR_ERR_INVALID &&
                 vkr_sgd_step(cmd, 0, &o, b, b, b) == VKR_ERR_INVALID &&
                 vkr_sgd_step(cmd, 17, &o, b, b, b) == VKR_ERR_INVALID;
        vkr_selftest_add(st, "sgd", "step", "bad args rejected", 0, ok ? 0 : INFINITY, 1e-5);
        s = submit_free(cmd, VKR_OK);
    }
    vkr_buffer_destroy(b);
    return s;
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
    vkr_rng rng;
    vkr_rng_seed(&rng, 14);
    vkr_status s;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vkr_optim_params o = {.lr = cases[c].lr, .beta1 = cases[c].beta1, .beta2 = cases[c].beta2, .eps = cases[c].eps,
                              .l2 = cases[c].l2, .weight_decay = cases[c].wd};
        for (size_t k = 0; k < 4; k++) {
            uint64_t n = cases[c].all_sizes ? k_opt_sizes[k] : k == 0 ? 100003 : 0;
            if (!n) continue;
            if ((s = optim_case(ctx, st, &rng, 1, o, 1, n, cases[c].chunk, cases[c].label, 0.01))) return s;
        }
    }
    vkr_buffer *b = NULL;
    vkr_cmd *cmd = NULL;
    s = vkr_buffer_create(ctx, 64, &b);
    if (!s) s = vkr_cmd_begin(ctx, &cmd);
    if (!s) {
        vkr_optim_params o = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f, .step = 0};
        int ok = vkr_adam_step(cmd, 16, &o, b, b, b, b) == VKR_ERR_INVALID; /* step is 1-based */
        o.step = 1;
        ok = ok && vkr_adam_step(cmd, 16, &o, b, b, NULL, b) == VKR_ERR_INVALID &&
             vkr_adam_step(cmd, 17, &o, b, b, b, b) == VKR_ERR_INVALID;
        o.beta1 = 1.0f;
        ok = ok && vkr_adam_step(cmd, 16, &o, b, b, b, b) == VKR_ERR_INVALID;
        vkr_selftest_add(st, "adam", "step", "bad args rejected", 0, ok ? 0 : INFINITY, 1e-5);
        s = submit_free(cmd, VKR_OK);
    }
    vkr_buffer_destroy(b);
    return s;
}
