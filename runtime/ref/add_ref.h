#ifndef VKRUN_ADD_REF_H
#define VKRUN_ADD_REF_H
#include <stdint.h>
/* Plain-C reference of vkr_add_forward / vkr_add_backward (runtime/ops/add.c). */
void vkr_ref_add_forward(uint64_t n, double *out, const double *a, const double *b);
/* da = dout, db = dout; either may be NULL. */
void vkr_ref_add_backward(uint64_t n, double *da, double *db, const double *dout);
#endif
