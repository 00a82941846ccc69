#ifndef VKRUN_MULTIPLY_REF_H
#define VKRUN_MULTIPLY_REF_H
/* Plain-C reference of vkr_multiply_forward / vkr_multiply_backward (runtime/ops/multiply.c):
 * b is [N, C, HW] (bhw = hw) or [N, C] broadcast over HW (bhw = 1); da / db may be NULL. */
void vkr_ref_multiply_forward(int n, int c, int hw, int bhw, double *out, const double *a, const double *b);
void vkr_ref_multiply_backward(int n, int c, int hw, int bhw, double *da, double *db, const double *dout,
                               const double *a, const double *b);
#endif
