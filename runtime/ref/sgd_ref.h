#ifndef VKRUN_SGD_REF_H
#define VKRUN_SGD_REF_H
#include <stdint.h>

#include "vkrun_ops.h"
/* Plain-C reference of vkr_sgd_step (runtime/ops/sgd.c), Keras SGD in double:
 *   g += l2 * p;  v = momentum * v - lr * g;  p += v  (nesterov: p += momentum * v - lr * g);
 *   decoupled weight decay p -= lr * weight_decay * p_old.  velocity NULL: p -= lr * g. */
void vkr_ref_sgd_step(uint64_t n, const vkr_optim_params *o, double *param, const double *grad, double *velocity);
#endif
