#ifndef VKRUN_AVGPOOL_REF_H
#define VKRUN_AVGPOOL_REF_H
#include "vkrun_ops.h"
/* Plain-C reference of vkr_avgpool_forward / vkr_avgpool_backward (runtime/ops/avgpool.c).
 * Divisor: kh*kw if p->count_include_pad, else the number of valid input positions. */
void vkr_ref_avgpool_forward(double *out, const double *inp, const vkr_pool_shape *p);
void vkr_ref_avgpool_backward(double *dinp, const double *dout, const vkr_pool_shape *p);
#endif
