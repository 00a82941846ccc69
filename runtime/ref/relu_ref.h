#ifndef VKRUN_RELU_REF_H
#define VKRUN_RELU_REF_H
#include <stdint.h>
/* Plain-C reference of vkr_relu_forward / vkr_relu_backward (runtime/ops/relu.c). */
void vkr_ref_relu_forward(uint64_t n, double *out, const double *inp);
/* dinp = dout * (out > 0), out = forward output; dinp may be dout. */
void vkr_ref_relu_backward(uint64_t n, double *dinp, const double *dout, const double *out);
#endif
