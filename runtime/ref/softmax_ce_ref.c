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
    size_t n = (size_t)batch * (size_t)classes;
    for (size_t i = 0; i < n; i++) dlogits[i] = (probs[i] - targets[i]) / batch;
}
