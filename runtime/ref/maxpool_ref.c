#include "maxpool_ref.h"
void vkr_ref_maxpool_forward(double *out, int32_t *argmax, const double *inp, const vkr_pool_shape *p) {
    int oh = vkr_pool_out_h(p), ow = vkr_pool_out_w(p);
    for (long q = 0; q < (long)p->n * p->c; q++) {
        const double *x = inp + q * p->h * p->w;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int best_i = -1;
                double best = 0;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        int y = oy * p->stride_h - p->pad_t + ky, xx = ox * p->stride_w - p->pad_l + kx;
                        if (y < 0 || y >= p->h || xx < 0 || xx >= p->w) continue;
                        if (best_i < 0 || x[y * p->w + xx] > best) {
                            best = x[y * p->w + xx];
                            best_i = y * p->w + xx;
                        }
                    }
                out[(q * oh + oy) * ow + ox] = best;
                argmax[(q * oh + oy) * ow + ox] = best_i;
            }
    }
}
void vkr_ref_maxpool_backward(double *dinp, const double *dout, const int32_t *argmax, const vkr_pool_shape *p) {
    int oh = vkr_pool_out_h(p), ow = vkr_pool_out_w(p);
    long hw = (long)p->h * p->w;
    for (long i = 0; i < (long)p->n * p->c * hw; i++) dinp[i] = 0;
    for (long q = 0; q < (long)p->n * p->c; q++)
        for (long o = 0; o < (long)oh * ow; o++) {
            int32_t a = argmax[q * oh * ow + o];
            if (a >= 0 && a < hw) dinp[q * hw + a] += dout[q * oh * ow + o];
        }
}
