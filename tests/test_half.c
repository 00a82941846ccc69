/* The fp16 / bf16 rounding references (runtime/ref/half_ref.c) that the selftests gemm_f16 and
 * gemm_bf16 hold the kernels to, on hand-computed values: ties to even, the largest finite value
 * and the overflow threshold, subnormals, signs, NaN and infinities. */
#include "ref/half_ref.h"
#include "test_util.h"

#include <math.h>

static void same(double got, double want, const char *fmt, double x) {
    int ok = (isnan(want) && isnan(got)) || (got == want && signbit(got) == signbit(want));
    char what[96];
    snprintf(what, sizeof what, fmt, x);
    CHECK(ok, "%s -> %.17g (expected %.17g)", what, got, want);
}

int main(void) {
    /* fp16: 11 significant bits, quantum 2^-10 in [1, 2), largest 65504, subnormal quantum 2^-24 */
    same(vkr_ref_round_f16(1 + 0x1p-11), 1, "f16(1 + 2^-11) tie to even", 0);
    same(vkr_ref_round_f16(1 + 3 * 0x1p-11), 1 + 0x1p-9, "f16(1 + 3*2^-11) tie to even", 0);
    same(vkr_ref_round_f16(1 + 0x1p-11 + 0x1p-20), 1 + 0x1p-10, "f16(just past a tie) rounds up", 0);
    same(vkr_ref_round_f16(-3.14159265), -3.140625, "f16(%g)", -3.14159265);
    same(vkr_ref_round_f16(65504), 65504, "f16(%g) largest finite", 65504);
    same(vkr_ref_round_f16(65519.99), 65504, "f16(%g) below the overflow tie", 65519.99);
    same(vkr_ref_round_f16(65520), INFINITY, "f16(%g) overflow tie", 65520);
    same(vkr_ref_round_f16(-1e5), -INFINITY, "f16(%g)", -1e5);
    same(vkr_ref_round_f16(0x1p-24), 0x1p-24, "f16(2^-24) smallest subnormal", 0);
    same(vkr_ref_round_f16(0x1p-25), 0, "f16(2^-25) tie to even zero", 0);
    same(vkr_ref_round_f16(3 * 0x1p-26), 0x1p-24, "f16(0.75 * 2^-24)", 0);
    same(vkr_ref_round_f16(5 * 0x1p-25), 0x1p-23, "f16(2.5 * 2^-24) tie to even", 0);
    same(vkr_ref_round_f16(-0.0), -0.0, "f16(-0)", 0);
    same(vkr_ref_round_f16(NAN), NAN, "f16(NaN)", 0);
    /* bf16: 8 significant bits, quantum 2^-7 in [1, 2), largest (2 - 2^-7) 2^127 */
    same(vkr_ref_round_bf16(1 + 0x1p-8), 1, "bf16(1 + 2^-8) tie to even", 0);
    same(vkr_ref_round_bf16(1 + 3 * 0x1p-8), 1 + 0x1p-6, "bf16(1 + 3*2^-8) tie to even", 0);
    same(vkr_ref_round_bf16(3.14159265f), 3.140625, "bf16(%g)", 3.14159265);
    same(vkr_ref_round_bf16(0x1.FEp127), 0x1.FEp127, "bf16(largest finite)", 0);
    same(vkr_ref_round_bf16(0x1.FFp127), INFINITY, "bf16((2 - 2^-8) 2^127) overflow tie", 0);
    same(vkr_ref_round_bf16(-0x1.FFFFFEp127), -INFINITY, "bf16(-FLT_MAX)", 0);
    same(vkr_ref_round_bf16(0x1p-149), 0, "bf16(2^-149) (fp32's smallest subnormal)", 0);
    same(vkr_ref_round_bf16(0x1p-133), 0x1p-133, "bf16(2^-133)", 0);
    same(vkr_ref_round_bf16(1e30f), 0x1.94p99, "bf16(%g)", 1e30f);
    same(vkr_ref_round_bf16(INFINITY), INFINITY, "bf16(inf)", 0);
    same(vkr_ref_round_bf16(NAN), NAN, "bf16(NaN)", 0);
    return test_finish();
}
