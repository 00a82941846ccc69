#ifndef VKRUN_ACT_REF_H
#define VKRUN_ACT_REF_H
#include <stdint.h>

#include "vkrun_ops.h"
/* Plain-C reference of vkr_act_forward / vkr_act_backward (runtime/ops/act.c): the element-wise
 * activations clip, sigmoid, hard_sigmoid, hard_swish, swish (vkr_act_params). */
void vkr_ref_act_forward(const vkr_act_params *a, uint64_t n, double *out, const double *inp);
/* dinp = dout * f'(inp) (f' = 0 on a kink, as torch); dinp may be dout. */
void vkr_ref_act_backward(const vkr_act_params *a, uint64_t n, double *dinp, const double *dout, const double *inp);
/* One value of f and of f' (the shader's formulas, in double). */
double vkr_ref_act_value(const vkr_act_params *a, double x);
double vkr_ref_act_slope(const vkr_act_params *a, double x);
#endif
