#ifndef VKRUN_BATCHNORM_REF_H
#define VKRUN_BATCHNORM_REF_H
/* Plain-C references (double) of the batch-norm ops in runtime/ops/batchnorm.c.
 * Same argument order as the GPU ops (shape last); NCHW; statistics per channel
 * over N, H, W.  NULL gradient outputs are skipped; in the training forward
 * running_mean / running_var may be NULL (no update). */
#include "vkrun_ops.h"

/* out = gamma * (inp - mean) / sqrt(var + eps) + beta  (running statistics) */
void vkr_ref_batchnorm_infer_forward(double *out, const double *inp, const double *gamma, const double *beta,
                                     const double *mean, const double *var, const vkr_bn_shape *p);
/* dinp = dout * gamma * invstd; dgamma = sum dout * xhat; dbeta = sum dout */
void vkr_ref_batchnorm_infer_backward(double *dinp, double *dgamma, double *dbeta, const double *dout,
                                      const double *inp, const double *gamma, const double *mean, const double *var,
                                      const vkr_bn_shape *p);
/* Batch statistics (biased variance for normalization); save_mean, save_invstd = 1/sqrt(var+eps);
 * running = momentum * running + (1 - momentum) * batch_stat (variance unbiased when p->unbiased_running_var). */
void vkr_ref_batchnorm_train_forward(double *out, double *save_mean, double *save_invstd, const double *inp,
                                     const double *gamma, const double *beta, double *running_mean,
                                     double *running_var, const vkr_bn_shape *p);
/* Full batch-norm gradient through the batch statistics. */
void vkr_ref_batchnorm_train_backward(double *dinp, double *dgamma, double *dbeta, const double *dout,
                                      const double *inp, const double *gamma, const double *save_mean,
                                      const double *save_invstd, const vkr_bn_shape *p);
#endif
