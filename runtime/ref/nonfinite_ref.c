#include "nonfinite_ref.h"

#include <math.h>

void vkr_ref_nonfinite(uint64_t n, const float *x, uint32_t *flag) {
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) *flag |= 1u;
}
