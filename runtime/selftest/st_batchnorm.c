/* TEMPORARY: replaced by the real checks. */
#include "vkrun_selftest.h"
vkr_status vkr_check_batchnorm_infer(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "batchnorm_infer: not implemented yet"); }
vkr_status vkr_check_batchnorm_train(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "batchnorm_train: not implemented yet"); }
vkr_status vkr_check_gap(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "gap: not implemented yet"); }
