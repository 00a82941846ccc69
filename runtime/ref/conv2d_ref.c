/* Direct (loop) convolution in double: the reference of runtime/ops/conv2d.c (groups, dilation). */
#include "conv2d_ref.h"

#include <string.h>

/* Calls fn over every (output, input, weight) index triple of the convolution's taps inside the
 * image: the one loop nest of forward and backward. */
#define CONV_TAPS(p, BODY)                                                                                   \
    do {                                                                                                     \
        int OH_ = vkr_conv2d_out_h(p), OW_ = vkr_conv2d_out_w(p), G_ = vkr_conv2d_groups(p);                 \
        int cg_ = (p)->c / G_, kg_ = (p)->k / G_, dh_ = vkr_conv2d_dil_h(p), dw_ = vkr_conv2d_dil_w(p);      \
        for (int n = 0; n < (p)->n; n++)                                                                     \
            for (int k = 0; k < (p)->k; k++)                                                                 \
                for (int oh = 0; oh < OH_; oh++)                                                             \
                    for (int ow = 0; ow < OW_; ow++) {                                                       \
                        size_t oi = ((size_t)(n * (p)->k + k) * OH_ + oh) * OW_ + ow;                        \
                        for (int cl = 0; cl < cg_; cl++) {                                                   \
                            int c = (k / kg_) * cg_ + cl;                                                    \
                            for (int r = 0; r < (p)->r; r++) {                                               \
                                int ih = oh * (p)->stride_h - (p)->pad_t + r * dh_;                          \
                                if (ih < 0 || ih >= (p)->h) continue;                                        \
                                for (int s = 0; s < (p)->s; s++) {                                           \
                                    int iw = ow * (p)->stride_w - (p)->pad_l + s * dw_;                      \
                                    if (iw < 0 || iw >= (p)->w) continue;                                    \
                                    size_t wi = ((size_t)(k * cg_ + cl) * (p)->r + r) * (p)->s + s;          \
                                    size_t ii = ((size_t)(n * (p)->c + c) * (p)->h + ih) * (p)->w + iw;      \
                                    BODY;                                                                    \
                                }                                                                            \
                            }                                                                                \
                        }                                                                                    \
                    }                                                                                        \
    } while (0)

void vkr_ref_conv2d_forward(double *out, const double *inp, const double *weight, const double *bias,
                            const vkr_conv2d_shape *p) {
    size_t no = (size_t)p->n * p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    size_t ohw = (size_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    for (size_t i = 0; i < no; i++) out[i] = bias ? bias[(i / ohw) % (size_t)p->k] : 0.0;
    CONV_TAPS(p, out[oi] += weight[wi] * inp[ii]);
}

void vkr_ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                             const double *weight, const vkr_conv2d_shape *p) {
    size_t ohw = (size_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p), no = (size_t)p->n * p->k * ohw;
    if (dinp) memset(dinp, 0, (size_t)p->n * p->c * p->h * p->w * sizeof *dinp);
    if (dweight) memset(dweight, 0, vkr_conv2d_weight_floats(p) * sizeof *dweight);
    if (dbias) {
        memset(dbias, 0, (size_t)p->k * sizeof *dbias);
        for (size_t i = 0; i < no; i++) dbias[(i / ohw) % (size_t)p->k] += dout[i];
    }
    CONV_TAPS(p, {
        double g = dout[oi];
        if (dinp) dinp[ii] += weight[wi] * g;
        if (dweight) dweight[wi] += inp[ii] * g;
    });
}
