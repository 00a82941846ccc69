#ifndef VKRUN_MAXPOOL_REF_H
#define VKRUN_MAXPOOL_REF_H
#include <stdint.h>
#include "vkrun_ops.h"
/* Plain-C reference of vkr_maxpool_forward / vkr_maxpool_backward (runtime/ops/maxpool.c).
 * argmax = y*W + x in the input plane; padding never wins; the first maximum
 * in row-major window order wins ties. */
void vkr_ref_maxpool_forward(double *out, int32_t *argmax, const double *inp, const vkr_pool_shape *p);
/* dinp[argmax] += dout over all windows (dinp overwritten). */
void vkr_ref_maxpool_backward(double *dinp, const double *dout, const int32_t *argmax, const vkr_pool_shape *p);
#endif
