/* TEMPORARY: replaced by the real checks. */
#include "vkrun_selftest.h"
vkr_status vkr_check_conv2d(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "conv2d: not implemented yet"); }
vkr_status vkr_check_dense(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "dense: not implemented yet"); }
