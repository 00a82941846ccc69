#include "multiply_ref.h"

#include <stdint.h>

void vkr_ref_multiply_forward(int n, int c, int hw, int bhw, double *out, const double *a, const double *b) {
    uint64_t planes = (uint64_t)n * c;
    for (uint64_t q = 0; q < planes; q++)
        for (int i = 0; i < hw; i++) out[q * hw + i] = a[q * hw + i] * b[bhw == 1 ? q : q * hw + i];
}

void vkr_ref_multiply_backward(int n, int c, int hw, int bhw, double *da, double *db, const double *dout,
                               const double *a, const double *b) {
    uint64_t planes = (uint64_t)n * c;
    for (uint64_t q = 0; q < planes; q++) {
        double sum = 0;
        for (int i = 0; i < hw; i++) {
            uint64_t e = q * hw + i, eb = bhw == 1 ? q : e;
            double g = dout[e]; /* da may be dout */
            if (db && bhw != 1) db[e] = g * a[e];
            sum += g * a[e];
            if (da) da[e] = g * b[eb];
        }
        if (db && bhw == 1) db[q] = sum;
    }
}
