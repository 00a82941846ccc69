#ifndef VKRUN_AXPBY_REF_H
#define VKRUN_AXPBY_REF_H
#include <stdint.h>
/* Plain-C reference of vkr_axpby (runtime/ops/axpby.c): y = a*x + b*y. */
void vkr_ref_axpby(uint64_t n, double a, const double *x, double b, double *y);
#endif
