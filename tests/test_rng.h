/* The tests' deterministic uniform generator (xorshift64, 53-bit mantissa): test_model,
 * test_micro and test_fold draw their inputs from it. */
#ifndef VKRUN_TEST_RNG_H
#define VKRUN_TEST_RNG_H

#include <stdint.h>

static uint64_t g_test_rng = 88172645463325252ull;

/* uniform in [0, 1) */
static inline double urand(void) {
    g_test_rng ^= g_test_rng << 13;
    g_test_rng ^= g_test_rng >> 7;
    g_test_rng ^= g_test_rng << 17;
    return (g_test_rng >> 11) * (1.0 / 9007199254740992.0);
}

#endif
