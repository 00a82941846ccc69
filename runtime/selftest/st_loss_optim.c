/* TEMPORARY: replaced by the real checks. */
#include "vkrun_selftest.h"
vkr_status vkr_check_softmax(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "softmax: not implemented yet"); }
vkr_status vkr_check_softmax_ce(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "softmax_ce: not implemented yet"); }
vkr_status vkr_check_sgd(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "sgd: not implemented yet"); }
vkr_status vkr_check_adam(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "adam: not implemented yet"); }
