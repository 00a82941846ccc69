#include "zeropad_ref.h"
void vkr_ref_zeropad_forward(double *out, const double *inp, const vkr_pad_shape *p) {
    int oh = p->h + p->pad_t + p->pad_b, ow = p->w + p->pad_l + p->pad_r;
    for (long q = 0; q < (long)p->n * p->c; q++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int iy = y - p->pad_t, ix = x - p->pad_l;
                out[(q * oh + y) * ow + x] =
                    iy >= 0 && iy < p->h && ix >= 0 && ix < p->w ? inp[(q * p->h + iy) * p->w + ix] : 0.0;
            }
}
void vkr_ref_zeropad_backward(double *dinp, const double *dout, const vkr_pad_shape *p) {
    int oh = p->h + p->pad_t + p->pad_b, ow = p->w + p->pad_l + p->pad_r;
    for (long q = 0; q < (long)p->n * p->c; q++)
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++)
                dinp[(q * p->h + y) * p->w + x] = dout[(q * oh + y + p->pad_t) * ow + x + p->pad_l];
}
