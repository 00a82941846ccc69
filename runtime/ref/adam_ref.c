#include "adam_ref.h"

#include <math.h>

void vkr_ref_adam_step(uint64_t n, const vkr_optim_params *o, double *param, const double *grad, double *m, double *v) {
    double b1 = o->beta1, b2 = o->beta2, eps = o->eps, l2 = o->l2, lr = o->lr, wd = o->weight_decay;
    double t = (double)o->step;
    double lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
    for (uint64_t i = 0; i < n; i++) {
        double w = param[i], g = grad[i] + l2 * w;
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        param[i] = w - lr_t * m[i] / (sqrt(v[i]) + eps) - lr * wd * w;
    }
}
