/* TEMPORARY: replaced by the real checks. */
#include "vkrun_selftest.h"
vkr_status vkr_check_relu(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "relu: not implemented yet"); }
vkr_status vkr_check_add(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "add: not implemented yet"); }
vkr_status vkr_check_zeropad(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "zeropad: not implemented yet"); }
vkr_status vkr_check_maxpool(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "maxpool: not implemented yet"); }
vkr_status vkr_check_avgpool(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "avgpool: not implemented yet"); }
vkr_status vkr_check_concat(vkr_context *ctx, vkr_selftest *st) { (void)ctx; (void)st; return vkr_fail(VKR_ERR_UNSUPPORTED, "concat: not implemented yet"); }
