/* Small helpers shared by the op recorders (internal). */
#ifndef VKRUN_OP_UTIL_H
#define VKRUN_OP_UTIL_H

#include "internal.h"
#include "vkrun_ops.h"

/* Context a command stream records for. */
vkr_context *vkr__cmd_context(vkr_cmd *cmd);

/* Fails with VKR_ERR_INVALID unless `b` is non-NULL and holds at least `floats` floats. */
vkr_status vkr__need(const char *op, const char *what, const vkr_buffer *b, uint64_t floats);

/* Largest element count per dispatch chunk so that a float range fits in
 * maxStorageBufferRange and chunk offsets stay aligned.  Element-wise ops loop
 * over chunks of this size, binding sub-ranges. */
uint64_t vkr__chunk_floats(const vkr_context *ctx);

/* Binding for floats [first, first+count) of b. */
static inline vkr_binding vkr__range(vkr_buffer *b, uint64_t first, uint64_t count) {
    vkr_binding r = {b, first * 4, count * 4};
    return r;
}
static inline vkr_binding vkr__whole(vkr_buffer *b) {
    vkr_binding r = {b, 0, 0};
    return r;
}

#endif
