#include "gap_ref.h"

#include <stddef.h>

void vkr_ref_gap_forward(int n, int c, int hw, double *out, const double *inp) {
    size_t planes = (size_t)n * (size_t)c;
    for (size_t q = 0; q < planes; q++) {
        double s = 0;
        for (int i = 0; i < hw; i++) s += inp[q * (size_t)hw + (size_t)i];
        out[q] = s / hw;
    }
}

void vkr_ref_gap_backward(int n, int c, int hw, double *dinp, const double *dout) {
    size_t planes = (size_t)n * (size_t)c;
    for (size_t q = 0; q < planes; q++)
        for (int i = 0; i < hw; i++) dinp[q * (size_t)hw + (size_t)i] = dout[q] / hw;
}
