/* The ops that `vkrun selftest` and ctest check, in --list order (ops.def). */
#include "selftest/checks.h"

static const vkr_selftest_op k_ops[] = {
#define VKR_SELFTEST_OP(name) {#name, vkr_check_##name},
#include "selftest/ops.def"
#undef VKR_SELFTEST_OP
};

const vkr_selftest_op *vkr_selftest_ops(size_t *count) {
    *count = sizeof k_ops / sizeof k_ops[0];
    return k_ops;
}
