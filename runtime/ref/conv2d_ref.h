#ifndef VKRUN_CONV2D_REF_H
#define VKRUN_CONV2D_REF_H
#include "vkrun_ops.h"
/* Plain-C double references of vkr_conv2d_forward / vkr_conv2d_backward (runtime/ops/conv2d.c),
 * same argument order: NCHW tensors, OIHW weights, explicit padding.
 * forward:  out[N,K,OH,OW] = conv(inp, weight) + bias (bias may be NULL)
 * backward: overwrites dinp, dweight, dbias (each may be NULL) from dout. */
void vkr_ref_conv2d_forward(double *out, const double *inp, const double *weight, const double *bias,
                            const vkr_conv2d_shape *p);
void vkr_ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                             const double *weight, const vkr_conv2d_shape *p);
#endif
