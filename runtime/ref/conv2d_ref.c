/* Direct (loop) convolution in double: the reference of runtime/ops/conv2d.c. */
#include "conv2d_ref.h"

#include <string.h>

void vkr_ref_conv2d_forward(double *out, const double *inp, const double *weight, const double *bias,
                            const vkr_conv2d_shape *p) {
    int OH = vkr_conv2d_out_h(p), OW = vkr_conv2d_out_w(p);
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = bias ? bias[k] : 0.0;
                    for (int c = 0; c < p->c; c++)
                        for (int r = 0; r < p->r; r++) {
                            int ih = oh * p->stride_h - p->pad_t + r;
                            if (ih < 0 || ih >= p->h) continue;
                            for (int s = 0; s < p->s; s++) {
                                int iw = ow * p->stride_w - p->pad_l + s;
                                if (iw < 0 || iw >= p->w) continue;
                                acc += weight[((size_t)(k * p->c + c) * p->r + r) * p->s + s] *
                                       inp[((size_t)(n * p->c + c) * p->h + ih) * p->w + iw];
                            }
                        }
                    out[((size_t)(n * p->k + k) * OH + oh) * OW + ow] = acc;
                }
}

void vkr_ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                             const double *weight, const vkr_conv2d_shape *p) {
    int OH = vkr_conv2d_out_h(p), OW = vkr_conv2d_out_w(p);
    if (dinp) memset(dinp, 0, (size_t)p->n * p->c * p->h * p->w * sizeof *dinp);
    if (dweight) memset(dweight, 0, (size_t)p->k * p->c * p->r * p->s * sizeof *dweight);
    if (dbias) memset(dbias, 0, (size_t)p->k * sizeof *dbias);
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double g = dout[((size_t)(n * p->k + k) * OH + oh) * OW + ow];
                    if (dbias) dbias[k] += g;
                    for (int c = 0; c < p->c; c++)
                        for (int r = 0; r < p->r; r++) {
                            int ih = oh * p->stride_h - p->pad_t + r;
                            if (ih < 0 || ih >= p->h) continue;
                            for (int s = 0; s < p->s; s++) {
                                int iw = ow * p->stride_w - p->pad_l + s;
                                if (iw < 0 || iw >= p->w) continue;
                                size_t wi = ((size_t)(k * p->c + c) * p->r + r) * p->s + s;
                                size_t ii = ((size_t)(n * p->c + c) * p->h + ih) * p->w + iw;
                                if (dinp) dinp[ii] += weight[wi] * g;
                                if (dweight) dweight[wi] += inp[ii] * g;
                            }
                        }
                }
}
