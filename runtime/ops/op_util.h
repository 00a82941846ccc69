/* Small helpers shared by the op recorders (internal). */
#ifndef VKRUN_OP_UTIL_H
#define VKRUN_OP_UTIL_H

#include "core/internal.h"
#include "vkrun_ops.h"

/* Context a command stream records for. */
vkr_context *vkr__cmd_context(vkr_cmd *cmd);

/* The stream's scratch buffer, grown to at least `bytes` if needed (vkr_cmd_reserve_scratch). */
vkr_status vkr__cmd_scratch(vkr_cmd *cmd, uint64_t bytes, vkr_buffer **out);
uint64_t vkr__cmd_scratch_size(const vkr_cmd *cmd);

/* Fails with VKR_ERR_INVALID unless `b` is non-NULL and holds at least `floats` floats. */
vkr_status vkr__need(const char *op, const char *what, const vkr_buffer *b, uint64_t floats);

/* Largest element count per dispatch chunk so that a float range fits in
 * maxStorageBufferRange and chunk offsets stay aligned.  Element-wise ops loop
 * over chunks of this size, binding sub-ranges. */
uint64_t vkr__chunk_floats(const vkr_context *ctx);

/* Records pipeline p over n floats of bufs[0..nbuf) (all indexed alike), in
 * dispatches of at most `chunk` floats with sub-range bindings and 256-wide
 * 1-D grids.  `push` (push_size bytes) starts with a uint32 element count,
 * which is set to each chunk's count; `writes` as for vkr_cmd_dispatch. */
vkr_status vkr__dispatch_chunked(vkr_cmd *cmd, vkr_pipeline *p, vkr_buffer *const *bufs, uint32_t nbuf,
                                 uint32_t writes, uint64_t n, uint64_t chunk, void *push);

/* ---- testing hooks (thread-local; the self-checks force the rare paths on small tensors) ---- */
/* batchnorm.c (gap.c honours the chunk too): chunk limit in floats (0 = device), path
 * (0 auto, 1 fused, 2 split), block size (0 = default). */
void vkr__bn_test_overrides(uint64_t chunk_floats, int path, uint32_t block);
/* softmax.c: cap on the chunk of softmax, softmax_ce, sgd and adam in floats (0 = off). */
void vkr__loss_force_chunk(uint64_t floats);

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
