/* The ops that `vkrun selftest` and ctest check, in --list order. */
#include "vkrun_selftest.h"

vkr_status vkr_check_axpby(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_conv2d(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_dense(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_batchnorm_infer(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_batchnorm_train(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_relu(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_add(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_zeropad(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_maxpool(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_avgpool(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_gap(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_concat(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_softmax(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_softmax_ce(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_sgd(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_adam(vkr_context *ctx, vkr_selftest *st);
vkr_status vkr_check_fused(vkr_context *ctx, vkr_selftest *st);

static const vkr_selftest_op k_ops[] = {
    {"axpby", vkr_check_axpby},
    {"conv2d", vkr_check_conv2d},
    {"dense", vkr_check_dense},
    {"batchnorm_infer", vkr_check_batchnorm_infer},
    {"batchnorm_train", vkr_check_batchnorm_train},
    {"relu", vkr_check_relu},
    {"add", vkr_check_add},
    {"zeropad", vkr_check_zeropad},
    {"maxpool", vkr_check_maxpool},
    {"avgpool", vkr_check_avgpool},
    {"gap", vkr_check_gap},
    {"concat", vkr_check_concat},
    {"softmax", vkr_check_softmax},
    {"softmax_ce", vkr_check_softmax_ce},
    {"sgd", vkr_check_sgd},
    {"adam", vkr_check_adam},
    {"fused", vkr_check_fused},
};

const vkr_selftest_op *vkr_selftest_ops(size_t *count) {
    *count = sizeof k_ops / sizeof k_ops[0];
    return k_ops;
}
