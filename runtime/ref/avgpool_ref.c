#include "avgpool_ref.h"

/* Valid window of output (oy, ox): rows [*y0, *y1), cols [*x0, *x1). */
static void window(const vkr_pool_shape *p, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
    int sy = oy * p->stride_h - p->pad_t, sx = ox * p->stride_w - p->pad_l;
    *y0 = sy < 0 ? 0 : sy;
    *y1 = sy + p->kh > p->h ? p->h : sy + p->kh;
    *x0 = sx < 0 ? 0 : sx;
    *x1 = sx + p->kw > p->w ? p->w : sx + p->kw;
}

/* count_include_pad: the window's cells inside the padded input (kh*kw unless ceil_mode runs a
 * window past it, torch); else the cells inside the input. */
static double divisor(const vkr_pool_shape *p, int oy, int ox, int y0, int y1, int x0, int x1) {
    if (!p->count_include_pad) return (double)(y1 - y0) * (x1 - x0);
    int sy = oy * p->stride_h - p->pad_t, sx = ox * p->stride_w - p->pad_l;
    int ey = sy + p->kh < p->h + p->pad_b ? sy + p->kh : p->h + p->pad_b;
    int ex = sx + p->kw < p->w + p->pad_r ? sx + p->kw : p->w + p->pad_r;
    return (double)(ey - sy) * (ex - sx);
}

void vkr_ref_avgpool_forward(double *out, const double *inp, const vkr_pool_shape *p) {
    int oh = vkr_pool_out_h(p), ow = vkr_pool_out_w(p);
    for (long q = 0; q < (long)p->n * p->c; q++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                double s = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) s += inp[(q * p->h + y) * p->w + x];
                double cnt = divisor(p, oy, ox, y0, y1, x0, x1);
                out[(q * oh + oy) * ow + ox] = s / cnt;
            }
}

void vkr_ref_avgpool_backward(double *dinp, const double *dout, const vkr_pool_shape *p) {
    int oh = vkr_pool_out_h(p), ow = vkr_pool_out_w(p);
    for (long i = 0; i < (long)p->n * p->c * p->h * p->w; i++) dinp[i] = 0;
    for (long q = 0; q < (long)p->n * p->c; q++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                double cnt = divisor(p, oy, ox, y0, y1, x0, x1);
                double g = dout[(q * oh + oy) * ow + ox] / cnt;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) dinp[(q * p->h + y) * p->w + x] += g;
            }
}
