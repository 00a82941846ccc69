#ifndef VKRUN_DENSE_REF_H
#define VKRUN_DENSE_REF_H
/* Plain-C double references of vkr_dense_forward / vkr_dense_backward (runtime/ops/dense.c),
 * same argument order as the GPU ops: the sizes (batch, in, out) first, then the tensors.
 * forward:  out[B,OUT] = inp[B,IN] . weight[OUT,IN]^T + bias[OUT] (bias may be NULL)
 * backward: overwrites dinp[B,IN], dweight[OUT,IN], dbias[OUT] (each may be NULL) from dout[B,OUT]. */
void vkr_ref_dense_forward(int batch, int in, int outf, double *out, const double *inp, const double *weight,
                           const double *bias);
void vkr_ref_dense_backward(int batch, int in, int outf, double *dinp, double *dweight, double *dbias,
                            const double *dout, const double *inp, const double *weight);
#endif
