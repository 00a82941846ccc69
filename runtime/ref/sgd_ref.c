#include "sgd_ref.h"

void vkr_ref_sgd_step(uint64_t n, const vkr_optim_params *o, double *param, const double *grad, double *velocity) {
    double lr = o->lr, mom = o->momentum, l2 = o->l2, wd = o->weight_decay;
    for (uint64_t i = 0; i < n; i++) {
        double w = param[i], g = grad[i] + l2 * w, upd;
        if (velocity) {
            double v = mom * velocity[i] - lr * g;
            velocity[i] = v;
            upd = o->nesterov ? mom * v - lr * g : v;
        } else {
            upd = -lr * g;
        }
        param[i] = w + upd - lr * wd * w;
    }
}
