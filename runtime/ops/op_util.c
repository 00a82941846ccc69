#include "op_util.h"

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
