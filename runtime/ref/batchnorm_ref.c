#include "batchnorm_ref.h"

#include <math.h>
#include <stddef.h>

#define AT(nn, cc, i) ((((size_t)(nn) * (size_t)p->c) + (size_t)(cc)) * hw + (i))

void vkr_ref_batchnorm_infer_forward(double *out, const double *inp, const double *gamma, const double *beta,
                                     const double *mean, const double *var, const vkr_bn_shape *p) {
    size_t hw = (size_t)p->h * (size_t)p->w;
    for (int c = 0; c < p->c; c++) {
        double is = 1.0 / sqrt(var[c] + (double)p->eps);
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) out[AT(n, c, i)] = gamma[c] * (inp[AT(n, c, i)] - mean[c]) * is + beta[c];
    }
}

void vkr_ref_batchnorm_infer_backward(double *dinp, double *dgamma, double *dbeta, const double *dout,
                                      const double *inp, const double *gamma, const double *mean, const double *var,
                                      const vkr_bn_shape *p) {
    size_t hw = (size_t)p->h * (size_t)p->w;
    for (int c = 0; c < p->c; c++) {
        double is = 1.0 / sqrt(var[c] + (double)p->eps), s1 = 0, s2 = 0;
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) {
                double d = dout[AT(n, c, i)];
                s1 += d;
                s2 += d * (inp[AT(n, c, i)] - mean[c]) * is;
                if (dinp) dinp[AT(n, c, i)] = d * gamma[c] * is;
            }
        if (dgamma) dgamma[c] = s2;
        if (dbeta) dbeta[c] = s1;
    }
}

void vkr_ref_batchnorm_train_forward(double *out, double *save_mean, double *save_invstd, const double *inp,
                                     const double *gamma, const double *beta, double *running_mean,
                                     double *running_var, const vkr_bn_shape *p) {
    size_t hw = (size_t)p->h * (size_t)p->w;
    double cnt = (double)p->n * (double)hw, mom = p->momentum;
    for (int c = 0; c < p->c; c++) {
        double s = 0, m2 = 0;
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) s += inp[AT(n, c, i)];
        double mean = s / cnt;
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) {
                double d = inp[AT(n, c, i)] - mean;
                m2 += d * d;
            }
        double var = m2 / cnt, is = 1.0 / sqrt(var + (double)p->eps);
        if (save_mean) save_mean[c] = mean;
        if (save_invstd) save_invstd[c] = is;
        if (running_mean) running_mean[c] = mom * running_mean[c] + (1 - mom) * mean;
        if (running_var) {
            double v = p->unbiased_running_var && cnt > 1 ? m2 / (cnt - 1) : var;
            running_var[c] = mom * running_var[c] + (1 - mom) * v;
        }
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) out[AT(n, c, i)] = gamma[c] * (inp[AT(n, c, i)] - mean) * is + beta[c];
    }
}

void vkr_ref_batchnorm_train_backward(double *dinp, double *dgamma, double *dbeta, const double *dout,
                                      const double *inp, const double *gamma, const double *save_mean,
                                      const double *save_invstd, const vkr_bn_shape *p) {
    size_t hw = (size_t)p->h * (size_t)p->w;
    double cnt = (double)p->n * (double)hw;
    for (int c = 0; c < p->c; c++) {
        double is = save_invstd[c], mean = save_mean[c], s1 = 0, s2 = 0;
        for (int n = 0; n < p->n; n++)
            for (size_t i = 0; i < hw; i++) {
                double d = dout[AT(n, c, i)];
                s1 += d;
                s2 += d * (inp[AT(n, c, i)] - mean) * is;
            }
        if (dgamma) dgamma[c] = s2;
        if (dbeta) dbeta[c] = s1;
        if (dinp)
            for (int n = 0; n < p->n; n++)
                for (size_t i = 0; i < hw; i++) {
                    double xh = (inp[AT(n, c, i)] - mean) * is;
                    dinp[AT(n, c, i)] = gamma[c] * is / cnt * (cnt * dout[AT(n, c, i)] - s1 - xh * s2);
                }
    }
}
