#include "op_util.h"

#include <string.h>

vkr_status vkr__need(const char *op, const char *what, const vkr_buffer *b, uint64_t floats) {
    if (!b) return vkr_fail(VKR_ERR_INVALID, "%s: buffer %s is NULL", op, what);
    if (b->size < floats * 4)
        return vkr_fail(VKR_ERR_INVALID, "%s: buffer %s holds %llu floats, the shape needs %llu", op, what,
                        (unsigned long long)(b->size / 4), (unsigned long long)floats);
    return VKR_OK;
}

uint64_t vkr__chunk_floats(const vkr_context *ctx) {
    uint64_t range = ctx->info.max_storage_buffer_range;
    uint64_t align = ctx->info.min_storage_buffer_offset_alignment;
    if (align < 16) align = 16;
    uint64_t bytes = range / align * align;
    if (bytes > (1ull << 31)) bytes = 1ull << 31;
    return bytes / 4;
}

vkr_status vkr__dispatch_chunked(vkr_cmd *cmd, vkr_pipeline *p, vkr_buffer *const *bufs, uint32_t nbuf,
                                 uint32_t writes, uint64_t n, uint64_t chunk, void *push) {
    if (nbuf > 8) return vkr_fail(VKR_ERR_INVALID, "dispatch_chunked: %u bindings (at most 8)", nbuf);
    if (chunk == 0) return vkr_fail(VKR_ERR_INVALID, "dispatch_chunked: chunk of 0 floats");
    for (uint64_t first = 0; first < n; first += chunk) {
        uint64_t cnt = n - first < chunk ? n - first : chunk;
        uint32_t c32 = (uint32_t)cnt;
        memcpy(push, &c32, sizeof c32);
        vkr_binding bind[8];
        for (uint32_t i = 0; i < nbuf; i++) bind[i] = vkr__range(bufs[i], first, cnt);
        uint32_t gx, gy;
        vkr_grid_1d(cnt, 256, &gx, &gy);
        vkr_status s = vkr_cmd_dispatch(cmd, p, bind, nbuf, writes, push, gx, gy, 1);
        if (s) return s;
    }
    return VKR_OK;
}
