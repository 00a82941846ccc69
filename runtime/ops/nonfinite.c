/* flag |= 1 if x[0..n) holds an inf or NaN, recorded as shaders/nonfinite.comp (chunked to
 * respect maxStorageBufferRange; the flag is one uint at offset 0 of its buffer, left as it was
 * when every value is finite, so several tensors can be checked into one flag). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

typedef struct { uint32_t n; } nonfinite_push;
VKR_PUSH_CHECK(nonfinite_push, nonfinite);

vkr_status vkr_nonfinite(vkr_cmd *cmd, uint64_t n, vkr_buffer *x, vkr_buffer *flag) {
    vkr_status s;
    if ((s = vkr__need("nonfinite", "x", x, n)) || (s = vkr__need("nonfinite", "flag", flag, 1))) return s;
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_pipeline_desc d = {VKR_SHADER(nonfinite)};
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    uint64_t chunk = vkr__elem_chunk_floats(ctx);
    for (uint64_t first = 0; first < n; first += chunk) {
        uint64_t cnt = n - first < chunk ? n - first : chunk;
        nonfinite_push pc = {(uint32_t)cnt};
        vkr_binding bind[2] = {vkr__range(x, first, cnt), vkr__range(flag, 0, 1)};
        uint32_t gx, gy;
        vkr_grid_1d(cnt, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, p, bind, 2, 0x2, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}
