#include "axpby_ref.h"
void vkr_ref_axpby(uint64_t n, double a, const double *x, double b, double *y) {
    for (uint64_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
}
