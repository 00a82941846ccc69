#ifndef VKRUN_ADAM_REF_H
#define VKRUN_ADAM_REF_H
#include <stdint.h>

#include "vkrun_ops.h"
/* Plain-C reference of vkr_adam_step (runtime/ops/adam.c), Keras Adam in double:
 *   t = o->step; lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); g += l2 * p;
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr_t m / (sqrt(v) + eps);
 *   decoupled weight decay p -= lr * weight_decay * p_old. */
void vkr_ref_adam_step(uint64_t n, const vkr_optim_params *o, double *param, const double *grad, double *m, double *v);
#endif
