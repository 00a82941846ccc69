/* Self-test: each op checked on the device against its plain-C reference
 * (double), and each reference backward against central finite differences. */
#ifndef VKRUN_SELFTEST_H
#define VKRUN_SELFTEST_H

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char op[32];
    char direction[64];  /* "forward", "backward", "backward ref vs finite diff", "step" */
    char shapes[512];    /* shapes (and variants) tried */
    int checks;          /* number of shape/variant cases folded into this line */
    double max_abs, max_rel, tol;
    int pass;
} vkr_selftest_result;

typedef struct vkr_selftest vkr_selftest;

typedef vkr_status (*vkr_selftest_fn)(vkr_context *ctx, vkr_selftest *st);
typedef struct {
    const char *name;
    vkr_selftest_fn fn;
} vkr_selftest_op;

/* The registered ops (runtime/selftest/registry.c). */
const vkr_selftest_op *vkr_selftest_ops(size_t *count);

vkr_selftest *vkr_selftest_new(void);
void vkr_selftest_free(vkr_selftest *st);
/* Folds one case into the line (op, direction): errors are maxed, shapes appended.
 * A case passes when max_rel <= tol (max_rel = max|got-ref| / max(max|ref|, 1e-30)). */
void vkr_selftest_add(vkr_selftest *st, const char *op, const char *direction, const char *shape, double max_abs,
                      double max_rel, double tol);
size_t vkr_selftest_count(const vkr_selftest *st);
const vkr_selftest_result *vkr_selftest_get(const vkr_selftest *st, size_t i);
int vkr_selftest_all_pass(const vkr_selftest *st);

/* ---- helpers for the op checks (runtime/selftest/util.c) ---- */
/* Random inputs: vkr_rng_* in vkrun.h. */
/* Errors of got (float, from the device) against ref (double). */
void vkr_compare(const float *got, const double *ref, size_t n, double *max_abs, double *max_rel);
/* Same, relative to max(max |ref|, floor): `floor` is the scale the quantity's rounding errors
 * are proportional to (e.g. max |x| for a mean, sum |dy| for a gradient sum), so a reference
 * that happens to be ~0 (a mean of centered data, dgamma of a constant input) does not turn a
 * rounding difference into a huge relative error. */
void vkr_compare_scaled(const float *got, const double *ref, size_t n, double floor, double *max_abs,
                        double *max_rel);
void vkr_compare_d(const double *got, const double *ref, size_t n, double *max_abs, double *max_rel);
double *vkr_to_double(const float *x, size_t n);   /* malloc'ed copy */
float *vkr_to_float(const double *x, size_t n);    /* malloc'ed copy */
/* Uploads host floats into a new buffer / downloads a buffer into a new array (malloc'ed). */
vkr_status vkr_upload_new(vkr_context *ctx, const float *x, size_t n, vkr_buffer **out);
vkr_status vkr_download_new(vkr_buffer *b, size_t n, float **out);

/* Central finite differences of L(x) = sum_i r[i] * f(x)[i] at `nsamples`
 * coordinates of x (spread deterministically), compared with `analytic`
 * (dL/dx from the reference backward).  f writes nout doubles.  Returns the
 * max abs error and the relative error vs max |analytic| over the samples. */
typedef void (*vkr_fd_fn)(void *ud, const double *x, double *out);
void vkr_fd_check(vkr_fd_fn f, void *ud, double *x, size_t nx, size_t nout, const double *r, const double *analytic,
                  int nsamples, double h, double *max_abs, double *max_rel);

#ifdef __cplusplus
}
#endif
#endif
