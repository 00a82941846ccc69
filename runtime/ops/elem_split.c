/* Splitting helpers for relu/add/zeropad/maxpool/avgpool/concat (see elem_split.h). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#include <string.h>

static _Thread_local uint64_t g_force_chunk;

void vkr__elem_force_chunk_floats(uint64_t floats) { g_force_chunk = floats; }

uint64_t vkr__elem_align_floats(const vkr_context *ctx) {
    uint64_t a = ctx->info.min_storage_buffer_offset_alignment;
    if (a < 16) a = 16; /* as vkr__chunk_floats */
    return a / 4;
}

uint64_t vkr__elem_chunk_floats(const vkr_context *ctx) {
    uint64_t chunk = vkr__chunk_floats(ctx);
    if (g_force_chunk && g_force_chunk < chunk) {
        uint64_t a = vkr__elem_align_floats(ctx);
        chunk = g_force_chunk / a * a;
        if (chunk < 2 * a) chunk = 2 * a;
    }
    return chunk;
}

uint64_t vkr__planes_per_dispatch(const vkr_context *ctx, const uint64_t *plane_floats, int ntensors) {
    uint64_t chunk = vkr__elem_chunk_floats(ctx);
    uint64_t room = chunk - (vkr__elem_align_floats(ctx) - 1); /* worst-case alignment slack */
    uint64_t best = UINT64_MAX;
    for (int k = 0; k < ntensors; k++) {
        uint64_t np = plane_floats[k] ? room / plane_floats[k] : best;
        if (np < best) best = np;
    }
    return best;
}

vkr_binding vkr__planes_binding(const vkr_context *ctx, vkr_buffer *b, uint64_t plane, uint64_t p0, uint64_t np,
                                uint32_t *base) {
    uint64_t a = vkr__elem_align_floats(ctx);
    uint64_t first = p0 * plane;
    uint64_t start = first / a * a;
    *base = (uint32_t)(first - start);
    return vkr__range(b, start, first - start + np * plane);
}

#define POOL_MAX_DIM (1 << 24)

vkr_status vkr__pool_check(const char *op, const vkr_pool_shape *p) {
    if (!p) return vkr_fail(VKR_ERR_INVALID, "%s: shape is NULL", op);
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: n, c, h, w must be positive (got %d, %d, %d, %d)", op, p->n, p->c, p->h,
                        p->w);
    if (p->kh <= 0 || p->kw <= 0 || p->stride_h <= 0 || p->stride_w <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: kernel and stride must be positive (got %dx%d /%dx%d)", op, p->kh, p->kw,
                        p->stride_h, p->stride_w);
    if (p->h > POOL_MAX_DIM || p->w > POOL_MAX_DIM || p->kh > POOL_MAX_DIM || p->kw > POOL_MAX_DIM)
        return vkr_fail(VKR_ERR_INVALID, "%s: spatial size or kernel over %d", op, POOL_MAX_DIM);
    if (p->pad_t < 0 || p->pad_b < 0 || p->pad_l < 0 || p->pad_r < 0 || p->pad_t >= p->kh || p->pad_b >= p->kh ||
        p->pad_l >= p->kw || p->pad_r >= p->kw)
        return vkr_fail(VKR_ERR_INVALID,
                        "%s: padding must be in [0, kernel) per side (got t%d b%d l%d r%d for a %dx%d kernel)", op,
                        p->pad_t, p->pad_b, p->pad_l, p->pad_r, p->kh, p->kw);
    if (p->h + p->pad_t + p->pad_b < p->kh || p->w + p->pad_l + p->pad_r < p->kw)
        return vkr_fail(VKR_ERR_INVALID, "%s: %dx%d kernel larger than the padded %dx%d input", op, p->kh, p->kw,
                        p->h + p->pad_t + p->pad_b, p->w + p->pad_l + p->pad_r);
    return VKR_OK;
}

VKR_PUSH_CHECK(vkr__pool_push, maxpool_forward);
VKR_PUSH_CHECK(vkr__pool_push, maxpool_backward);
VKR_PUSH_CHECK(vkr__pool_push, avgpool_forward);
VKR_PUSH_CHECK(vkr__pool_push, avgpool_backward);

vkr_status vkr__pool_record(vkr_cmd *cmd, const char *op, vkr_pipeline_desc d, const vkr_pool_shape *p,
                            vkr_buffer **bufs, const uint64_t *plane_floats, uint32_t writes, uint64_t index_plane) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint32_t nbuf = (uint32_t)strlen(d.bindings);
    uint64_t planes = (uint64_t)p->n * p->c;
    uint64_t per = vkr__planes_per_dispatch(ctx, plane_floats, (int)nbuf);
    if (!per)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: one %dx%d image plane exceeds maxStorageBufferRange", op, p->h, p->w);
    vkr_pipeline *pipe;
    vkr_status s = vkr_pipeline_get(ctx, &d, &pipe);
    if (s) return s;
    for (uint64_t p0 = 0; p0 < planes; p0 += per) {
        uint64_t np = planes - p0 < per ? planes - p0 : per;
        vkr__pool_push pc = {(uint32_t)(np * index_plane),
                             (uint32_t)p->h,
                             (uint32_t)p->w,
                             (uint32_t)vkr_pool_out_h(p),
                             (uint32_t)vkr_pool_out_w(p),
                             (uint32_t)p->kh,
                             (uint32_t)p->kw,
                             (uint32_t)p->stride_h,
                             (uint32_t)p->stride_w,
                             (uint32_t)p->pad_t,
                             (uint32_t)p->pad_l,
                             /* 2: padding counts, the ceil_mode overhang does not (torch) */
                             (uint32_t)(p->count_include_pad ? (p->ceil_mode ? 2 : 1) : 0),
                             0,
                             0,
                             0,
                             (uint32_t)(p->h + p->pad_b),
                             (uint32_t)(p->w + p->pad_r)};
        uint32_t *base[3] = {&pc.base0, &pc.base1, &pc.base2};
        vkr_binding bind[3];
        for (uint32_t i = 0; i < nbuf; i++) bind[i] = vkr__planes_binding(ctx, bufs[i], plane_floats[i], p0, np, base[i]);
        uint32_t gx, gy;
        vkr_grid_1d(pc.total, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, pipe, bind, nbuf, writes, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}
