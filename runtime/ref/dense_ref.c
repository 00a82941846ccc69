/* Dense layer in double: the reference of runtime/ops/dense.c. */
#include "dense_ref.h"

#include <stddef.h>

void vkr_ref_dense_forward(int batch, int in, int outf, double *out, const double *inp, const double *weight,
                           const double *bias) {
    for (int b = 0; b < batch; b++)
        for (int o = 0; o < outf; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < in; i++) acc += inp[(size_t)b * in + i] * weight[(size_t)o * in + i];
            out[(size_t)b * outf + o] = acc;
        }
}

void vkr_ref_dense_backward(int batch, int in, int outf, double *dinp, double *dweight, double *dbias,
                            const double *dout, const double *inp, const double *weight) {
    if (dinp)
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < in; i++) {
                double acc = 0.0;
                for (int o = 0; o < outf; o++) acc += dout[(size_t)b * outf + o] * weight[(size_t)o * in + i];
                dinp[(size_t)b * in + i] = acc;
            }
    if (dweight)
        for (int o = 0; o < outf; o++)
            for (int i = 0; i < in; i++) {
                double acc = 0.0;
                for (int b = 0; b < batch; b++) acc += dout[(size_t)b * outf + o] * inp[(size_t)b * in + i];
                dweight[(size_t)o * in + i] = acc;
            }
    if (dbias)
        for (int o = 0; o < outf; o++) {
            double acc = 0.0;
            for (int b = 0; b < batch; b++) acc += dout[(size_t)b * outf + o];
            dbias[o] = acc;
        }
}
