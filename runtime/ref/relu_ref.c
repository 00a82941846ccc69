#include "relu_ref.h"
void vkr_ref_relu_forward(uint64_t n, double *out, const double *inp) {
    for (uint64_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0;
}
void vkr_ref_relu_backward(uint64_t n, double *dinp, const double *dout, const double *out) {
    for (uint64_t i = 0; i < n; i++) dinp[i] = out[i] > 0 ? dout[i] : 0;
}
