#include "concat_ref.h"
void vkr_ref_concat_forward(int n, int ca, int cb, int hw, double *out, const double *a, const double *b) {
    long pa = (long)ca * hw, pb = (long)cb * hw;
    for (long q = 0; q < n; q++) {
        for (long j = 0; j < pa; j++) out[q * (pa + pb) + j] = a[q * pa + j];
        for (long j = 0; j < pb; j++) out[q * (pa + pb) + pa + j] = b[q * pb + j];
    }
}
void vkr_ref_concat_backward(int n, int ca, int cb, int hw, double *da, double *db, const double *dout) {
    long pa = (long)ca * hw, pb = (long)cb * hw;
    for (long q = 0; q < n; q++) {
        if (da)
            for (long j = 0; j < pa; j++) da[q * pa + j] = dout[q * (pa + pb) + j];
        if (db)
            for (long j = 0; j < pb; j++) db[q * pb + j] = dout[q * (pa + pb) + pa + j];
    }
}
