/* The op checks (internal): one per line of ops.def, and what check files share. */
#ifndef VKRUN_ST_CHECKS_H
#define VKRUN_ST_CHECKS_H

#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#define VKR_SELFTEST_OP(name) vkr_status vkr_check_##name(vkr_context *ctx, vkr_selftest *st);
#include "selftest/ops.def"
#undef VKR_SELFTEST_OP

/* st_splitk.c: split-K weight / bias gradients of conv2d (dense = 0) or dense (1). */
vkr_status vkr_st_check_splitk(vkr_context *ctx, vkr_selftest *st, int dense);
/* harness.c: bytes of a chunk limit that gives `images` images per batch chunk. */
uint64_t vkr_st_conv_chunk_limit(const vkr_context *ctx, const vkr_conv2d_shape *p, int images);

#endif
