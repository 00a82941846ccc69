/* y = a*x + b*y, recorded as shaders/axpby.comp (chunked to respect maxStorageBufferRange). */
#include "op_util.h"

vkr_status vkr_axpby(vkr_cmd *cmd, uint64_t n, float a, vkr_buffer *x, float b, vkr_buffer *y) {
    vkr_status s;
    if ((s = vkr__need("axpby", "x", x, n)) || (s = vkr__need("axpby", "y", y, n))) return s;
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_pipeline_desc d = {.shader = "axpby", .bindings = "ss", .push_size = 12};
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    uint64_t chunk = vkr__chunk_floats(ctx);
    for (uint64_t first = 0; first < n; first += chunk) {
        uint64_t cnt = n - first < chunk ? n - first : chunk;
        struct { uint32_t n; float a, b; } pc = {(uint32_t)cnt, a, b};
        vkr_binding bind[2] = {vkr__range(x, first, cnt), vkr__range(y, first, cnt)};
        uint32_t gx, gy;
        vkr_grid_1d(cnt, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, p, bind, 2, 0x2, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}
