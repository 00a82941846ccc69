/* y = a*x + b*y, recorded as shaders/axpby.comp (chunked to respect maxStorageBufferRange). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

typedef struct { uint32_t n; float a, b; } axpby_push;
VKR_PUSH_CHECK(axpby_push, axpby);

vkr_status vkr_axpby(vkr_cmd *cmd, uint64_t n, float a, vkr_buffer *x, float b, vkr_buffer *y) {
    vkr_status s;
    if ((s = vkr__need("axpby", "x", x, n)) || (s = vkr__need("axpby", "y", y, n))) return s;
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_pipeline_desc d = {VKR_SHADER(axpby)};
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    axpby_push pc = {0, a, b};
    vkr_buffer *bufs[2] = {x, y};
    return vkr__dispatch_chunked(cmd, p, bufs, 2, 0x2, n, vkr__elem_chunk_floats(ctx), &pc);
}
