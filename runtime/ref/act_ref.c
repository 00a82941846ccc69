#include "act_ref.h"

#include <math.h>

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

double vkr_ref_act_value(const vkr_act_params *a, double x) {
    switch (a->mode) {
    case VKR_ACT_CLIP: return x < a->a ? a->a : x > a->b ? a->b : x;
    case VKR_ACT_SIGMOID: return sigmoid(x);
    case VKR_ACT_HARD_SIGMOID: return fmax(0.0, fmin(1.0, a->a * x + a->b));
    case VKR_ACT_HARD_SWISH: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case VKR_ACT_SWISH: return x * sigmoid(x);
    default: break;
    }
    return NAN;
}

/* torch's conventions on the kinks: the slope is the outer one (0 for clip / hard_sigmoid at
 * either end, hard_swish: 0 at x = -3, x/3 + 1/2 at x = 3) */
double vkr_ref_act_slope(const vkr_act_params *a, double x) {
    switch (a->mode) {
    case VKR_ACT_CLIP: return x > a->a && x < a->b ? 1.0 : 0.0;
    case VKR_ACT_SIGMOID: {
        double s = sigmoid(x);
        return s * (1.0 - s);
    }
    case VKR_ACT_HARD_SIGMOID: {
        double t = a->a * x + a->b;
        return t > 0.0 && t < 1.0 ? a->a : 0.0;
    }
    case VKR_ACT_HARD_SWISH: return x < -3.0 ? 0.0 : x <= 3.0 ? x / 3.0 + 0.5 : 1.0;
    case VKR_ACT_SWISH: {
        double s = sigmoid(x);
        return s + x * s * (1.0 - s);
    }
    default: break;
    }
    return NAN;
}

void vkr_ref_act_forward(const vkr_act_params *a, uint64_t n, double *out, const double *inp) {
    for (uint64_t i = 0; i < n; i++) out[i] = vkr_ref_act_value(a, inp[i]);
}

void vkr_ref_act_backward(const vkr_act_params *a, uint64_t n, double *dinp, const double *dout, const double *inp) {
    for (uint64_t i = 0; i < n; i++) dinp[i] = dout[i] * vkr_ref_act_slope(a, inp[i]);
}
