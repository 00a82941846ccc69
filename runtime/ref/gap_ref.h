#ifndef VKRUN_GAP_REF_H
#define VKRUN_GAP_REF_H
/* Plain-C references (double) of global average pooling (runtime/ops/gap.c). */
/* out[N,C] = mean over hw of inp[N,C,hw] */
void vkr_ref_gap_forward(int n, int c, int hw, double *out, const double *inp);
/* dinp[N,C,hw] = dout[N,C] / hw */
void vkr_ref_gap_backward(int n, int c, int hw, double *dinp, const double *dout);
#endif
