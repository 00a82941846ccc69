#ifndef VKRUN_SOFTMAX_REF_H
#define VKRUN_SOFTMAX_REF_H
/* Plain-C reference of vkr_softmax_forward (runtime/ops/softmax.c):
 * out[b,k] = exp(inp[b,k] - max) / sum_j exp(inp[b,j] - max), double throughout. */
void vkr_ref_softmax_forward(int batch, int classes, double *out, const double *inp);
#endif
