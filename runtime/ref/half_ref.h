#ifndef VKRUN_HALF_REF_H
#define VKRUN_HALF_REF_H
#include <stddef.h>
/* Plain-C reference of the fp16 rounding the --precision fp16 GEMM kernels apply to their
 * inputs (shaders/gemm_conv.glsl, PREC_F16): x rounded to the nearest IEEE binary16 value,
 * ties to even, subnormals kept (quantum 2^-24), |x| >= 65520 (halfway past 65504) to +-inf. */
double vkr_ref_round_f16(double x);
/* out[i] = vkr_ref_round_f16(x[i]) (out may be x). */
void vkr_ref_round_f16_array(double *out, const double *x, size_t n);
/* The bfloat16 rounding of --precision bf16 (PREC_BF16): x (a float value) rounded to 8
 * significant bits, ties to even, fp32's exponent range (quantum 2^-133 below 2^-126, as the
 * kernels' rounding of the fp32 bit pattern), past the largest bf16 value to +-inf; NaN stays. */
double vkr_ref_round_bf16(double x);
void vkr_ref_round_bf16_array(double *out, const double *x, size_t n);
#endif
