#ifndef VKRUN_ZEROPAD_REF_H
#define VKRUN_ZEROPAD_REF_H
#include "vkrun_ops.h"
/* Plain-C reference of vkr_zeropad_forward / vkr_zeropad_backward (runtime/ops/zeropad.c).
 * out is [n, c, h+pad_t+pad_b, w+pad_l+pad_r]. */
void vkr_ref_zeropad_forward(double *out, const double *inp, const vkr_pad_shape *p);
/* dinp = crop of dout (overwrites dinp). */
void vkr_ref_zeropad_backward(double *dinp, const double *dout, const vkr_pad_shape *p);
#endif
