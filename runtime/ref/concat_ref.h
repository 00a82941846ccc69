#ifndef VKRUN_CONCAT_REF_H
#define VKRUN_CONCAT_REF_H
/* Plain-C reference of vkr_concat_forward / vkr_concat_backward (runtime/ops/concat.c):
 * out[n, ca+cb, hw] = [a[n, ca, hw], b[n, cb, hw]]. */
void vkr_ref_concat_forward(int n, int ca, int cb, int hw, double *out, const double *a, const double *b);
/* da, db = the two channel slices of dout; either may be NULL. */
void vkr_ref_concat_backward(int n, int ca, int cb, int hw, double *da, double *db, const double *dout);
#endif
