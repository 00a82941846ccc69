#ifndef VKRUN_NONFINITE_REF_H
#define VKRUN_NONFINITE_REF_H
#include <stdint.h>
/* Plain-C reference of vkr_nonfinite (runtime/ops/nonfinite.c): *flag |= 1 if x[0..n) holds an
 * inf or NaN. */
void vkr_ref_nonfinite(uint64_t n, const float *x, uint32_t *flag);
#endif
