/* Splitting helpers shared by the element-wise and spatial ops (relu, add,
 * zeropad, maxpool, avgpool, concat) so that no binding exceeds
 * maxStorageBufferRange (internal). */
#ifndef VKRUN_ELEM_SPLIT_H
#define VKRUN_ELEM_SPLIT_H

#include "op_util.h"

/* Testing hook: caps the floats one binding of these ops may span on this
 * thread (0 = the device limit), so the split paths run on small tensors. */
void vkr__elem_force_chunk_floats(uint64_t floats);
/* Floats per binding: min(vkr__chunk_floats, override), a multiple of the
 * storage offset alignment (in floats). */
uint64_t vkr__elem_chunk_floats(const vkr_context *ctx);
/* Storage-buffer offset alignment in floats (>= 1). */
uint64_t vkr__elem_align_floats(const vkr_context *ctx);

/* Work split into independent "planes" (an image, or one channel plane):
 * tensor k holds plane_floats[k] floats per plane.  Returns the most planes
 * one dispatch may cover so that each tensor's binding (plus its alignment
 * slack) fits the chunk, or 0 if even one plane is too large. */
uint64_t vkr__planes_per_dispatch(const vkr_context *ctx, const uint64_t *plane_floats, int ntensors);

/* Binding of planes [p0, p0+np) of a tensor with `plane` floats per plane.
 * The binding starts at the aligned float offset at or below plane p0;
 * *base receives the float index of plane p0 inside the binding. */
vkr_binding vkr__planes_binding(const vkr_context *ctx, vkr_buffer *b, uint64_t plane, uint64_t p0, uint64_t np,
                                uint32_t *base);

/* ---- pooling (maxpool.c, avgpool.c) ---- */
/* Validates a pool shape (positive dims, strides, kernels; 0 <= pad < kernel
 * so that no window lies entirely in the padding; output >= 1x1). */
vkr_status vkr__pool_check(const char *op, const vkr_pool_shape *p);

/* Push constants of shaders/pool.glsl (size checked against every pool shader in elem_split.c). */
typedef struct {
    uint32_t total; /* invocations in this dispatch */
    uint32_t h, w, oh, ow;
    uint32_t kh, kw, sh, sw;
    uint32_t pad_t, pad_l;
    uint32_t include_pad;
    uint32_t base0, base1, base2; /* float offset of the first plane in bindings 0..2 */
    uint32_t eh, ew;              /* end of the padded input (h + pad_b, w + pad_r): include_pad 2 */
} vkr__pool_push;

/* Records the pool shader of pipeline `d` (VKR_SHADER(name)) over the planes of a pool:
 * its bindings in order, with plane_floats[i] floats per plane; `writes` as for
 * vkr_cmd_dispatch; `index_plane` = floats per plane of the tensor indexed by invocations. */
vkr_status vkr__pool_record(vkr_cmd *cmd, const char *op, vkr_pipeline_desc d, const vkr_pool_shape *p,
                            vkr_buffer **bufs, const uint64_t *plane_floats, uint32_t writes, uint64_t index_plane);

#endif
