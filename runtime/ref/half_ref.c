#include "half_ref.h"

#include <math.h>

double vkr_ref_round_f16(double x) {
    if (!isfinite(x) || x == 0) return x;
    if (fabs(x) >= 65520.0) return copysign(INFINITY, x);
    int e;
    frexp(x, &e);                         /* |x| = m 2^e, m in [0.5, 1): 11 significant bits */
    double q = ldexp(1.0, e - 11 > -24 ? e - 11 : -24); /* quantum: 2^(e-11), subnormals 2^-24 */
    return nearbyint(x / q) * q;          /* the default rounding mode: to nearest, ties to even */
}

double vkr_ref_round_bf16(double x) {
    if (!isfinite(x) || x == 0) return x;
    int e;
    frexp(x, &e);                                        /* 8 significant bits */
    double q = ldexp(1.0, e - 8 > -133 ? e - 8 : -133); /* fp32 subnormals: 16 bits cut from 2^-149 */
    double r = nearbyint(x / q) * q;
    return fabs(r) > 0x1.FEp127 ? copysign(INFINITY, x) : r; /* past bf16's largest value */
}

void vkr_ref_round_bf16_array(double *out, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = vkr_ref_round_bf16(x[i]);
}

void vkr_ref_round_f16_array(double *out, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = vkr_ref_round_f16(x[i]);
}
