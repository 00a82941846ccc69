/* Helpers shared by the op self-checks: RNG, comparisons, finite differences. */
#include "vkrun_selftest.h"

#include <math.h>
#include <stdlib.h>

void vkr_compare(const float *got, const double *ref, size_t n, double *max_abs, double *max_rel) {
    double ma = 0, mr = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d != d || got[i] != got[i]) nan = 1;
        if (d > ma) ma = d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    *max_abs = nan ? NAN : ma;
    *max_rel = nan ? NAN : ma / (mr > 1e-30 ? mr : 1e-30);
}

void vkr_compare_scaled(const float *got, const double *ref, size_t n, double floor, double *max_abs,
                        double *max_rel) {
    double ma, mr, scale = floor;
    vkr_compare(got, ref, n, &ma, &mr);
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    *max_abs = ma;
    *max_rel = ma != ma ? NAN : ma / (scale > 1e-30 ? scale : 1e-30);
}

void vkr_compare_d(const double *got, const double *ref, size_t n, double *max_abs, double *max_rel) {
    double ma = 0, mr = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (d != d) nan = 1;
        if (d > ma) ma = d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    *max_abs = nan ? NAN : ma;
    *max_rel = nan ? NAN : ma / (mr > 1e-30 ? mr : 1e-30);
}

double *vkr_to_double(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

float *vkr_to_float(const double *x, size_t n) {
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (f)
        for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

vkr_status vkr_upload_new(vkr_context *ctx, const float *x, size_t n, vkr_buffer **out) {
    return vkr_buffer_from_floats(ctx, x, n, out);
}

vkr_status vkr_download_new(vkr_buffer *b, size_t n, float **out) {
    *out = malloc((n ? n : 1) * sizeof(float));
    if (!*out) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = vkr_buffer_download(b, 0, *out, n * sizeof(float));
    if (s) {
        free(*out);
        *out = NULL;
    }
    return s;
}

void vkr_fd_check(vkr_fd_fn f, void *ud, double *x, size_t nx, size_t nout, const double *r, const double *analytic,
                  int nsamples, double h, double *max_abs, double *max_rel) {
    double *o = malloc(nout * sizeof *o);
    double ma = 0, mg = 0;
    if (!o) {
        *max_abs = *max_rel = NAN;
        return;
    }
    size_t step = nx > (size_t)nsamples ? nx / (size_t)nsamples : 1;
    for (size_t i = step / 2; i < nx; i += step) {
        double keep = x[i];
        x[i] = keep + h;
        f(ud, x, o);
        double lp = 0;
        for (size_t j = 0; j < nout; j++) lp += r[j] * o[j];
        x[i] = keep - h;
        f(ud, x, o);
        double lm = 0;
        for (size_t j = 0; j < nout; j++) lm += r[j] * o[j];
        x[i] = keep;
        double fd = (lp - lm) / (2 * h);
        double d = fabs(fd - analytic[i]);
        if (d > ma || d != d) ma = d;
        if (fabs(analytic[i]) > mg) mg = fabs(analytic[i]);
    }
    free(o);
    *max_abs = ma;
    *max_rel = ma / (mg > 1e-30 ? mg : 1e-30);
}
