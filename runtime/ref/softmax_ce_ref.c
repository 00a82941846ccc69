#include "softmax_ce_ref.h"

#include <math.h>
#include <stddef.h>

void vkr_ref_softmax_ce_forward(int batch, int classes, double *result, double *probs, const double *logits,
                                const double *targets) {
    double loss = 0, correct = 0;
    for (int b = 0; b < batch; b++) {
        const double *z = logits + (size_t)b * (size_t)classes, *t = targets + (size_t)b * (size_t)classes;
        double *p = probs + (size_t)b * (size_t)classes;
        double m = z[0], s = 0, tm = t[0], row = 0;
        int am = 0, at = 0;
        for (int k = 1; k < classes; k++) {
            if (z[k] > m) m = z[k], am = k;
            if (t[k] > tm) tm = t[k], at = k;
        }
        for (int k = 0; k < classes; k++) s += exp(z[k] - m);
        double lse = log(s);
        for (int k = 0; k < classes; k++) {
            p[k] = exp(z[k] - m) / s;
            row -= t[k] * (z[k] - m - lse);
        }
        loss += row;
        correct += am == at;
    }
    result[0] = loss / batch;
    result[1] = correct;
}

void vkr_ref_softmax_ce_backward(int batch, int classes, double *dlogits, const double *probs, const double *targets) {
    for (int b = 0; b < batch; b++) { /* d/dz of -sum_k t_k log softmax(z)_k = p * sum_k t_k - t */
        size_t o = (size_t)b * (size_t)classes;
        double st = 0;
        for (int k = 0; k < classes; k++) st += targets[o + k];
        for (int k = 0; k < classes; k++) dlogits[o + k] = (probs[o + k] * st - targets[o + k]) / batch;
    }
}
