#include "softmax_ref.h"

#include <math.h>
#include <stddef.h>

void vkr_ref_softmax_forward(int batch, int classes, double *out, const double *inp) {
    for (int b = 0; b < batch; b++) {
        const double *x = inp + (size_t)b * (size_t)classes;
        double *y = out + (size_t)b * (size_t)classes;
        double m = x[0], s = 0;
        for (int k = 1; k < classes; k++) m = x[k] > m ? x[k] : m;
        for (int k = 0; k < classes; k++) s += exp(x[k] - m);
        for (int k = 0; k < classes; k++) y[k] = exp(x[k] - m) / s;
    }
}
