/* Channel concat of two NCHW tensors, forward and backward, as strided block
 * copies (shaders/concat.comp): per image, `len` floats from src at plane
 * offset `src_off` to dst at `dst_off`.  Split by batch when a tensor exceeds
 * maxStorageBufferRange (and by segments when one image alone does). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

typedef struct {
    uint32_t total, len;
    uint32_t dst_plane, dst_off, src_plane, src_off;
    uint32_t base_dst, base_src;
} concat_push;
VKR_PUSH_CHECK(concat_push, concat);

static vkr_status copy_blocks(vkr_cmd *cmd, uint64_t n, vkr_buffer *dst, uint64_t dst_plane,
                              uint64_t dst_off, vkr_buffer *src, uint64_t src_plane, uint64_t src_off, uint64_t len) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t sizes[2] = {dst_plane, src_plane};
    vkr_pipeline *pipe;
    vkr_pipeline_desc d = {VKR_SHADER(concat)};
    vkr_status s = vkr_pipeline_get(ctx, &d, &pipe);
    if (s) return s;
    uint64_t per = vkr__planes_per_dispatch(ctx, sizes, 2);
    if (!per) {
        /* one image alone exceeds a binding: copy it in contiguous segments */
        uint64_t seg = vkr__elem_chunk_floats(ctx) - (vkr__elem_align_floats(ctx) - 1);
        for (uint64_t q = 0; q < n; q++)
            for (uint64_t j0 = 0; j0 < len; j0 += seg) {
                uint64_t cnt = len - j0 < seg ? len - j0 : seg;
                concat_push pc = {(uint32_t)cnt, (uint32_t)cnt, 0, 0, 0, 0, 0, 0};
                vkr_binding bind[2] = {
                    vkr__planes_binding(ctx, dst, 1, q * dst_plane + dst_off + j0, cnt, &pc.base_dst),
                    vkr__planes_binding(ctx, src, 1, q * src_plane + src_off + j0, cnt, &pc.base_src)};
                uint32_t gx, gy;
                vkr_grid_1d(cnt, 256, &gx, &gy);
                if ((s = vkr_cmd_dispatch(cmd, pipe, bind, 2, 0x1, &pc, gx, gy, 1))) return s;
            }
        return VKR_OK;
    }
    for (uint64_t p0 = 0; p0 < n; p0 += per) {
        uint64_t np = n - p0 < per ? n - p0 : per;
        concat_push pc = {(uint32_t)(np * len), (uint32_t)len, (uint32_t)dst_plane, (uint32_t)dst_off,
                          (uint32_t)src_plane, (uint32_t)src_off, 0, 0};
        vkr_binding bind[2] = {vkr__planes_binding(ctx, dst, dst_plane, p0, np, &pc.base_dst),
                               vkr__planes_binding(ctx, src, src_plane, p0, np, &pc.base_src)};
        uint32_t gx, gy;
        vkr_grid_1d(pc.total, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, pipe, bind, 2, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

static vkr_status check(const char *op, int n, int ca, int cb, int hw) {
    if (n <= 0 || ca <= 0 || cb <= 0 || hw <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: n, ca, cb, hw must be positive (got %d, %d, %d, %d)", op, n, ca, cb, hw);
    return VKR_OK;
}

vkr_status vkr_concat_forward(vkr_cmd *cmd, int n, int ca, int cb, int hw, vkr_buffer *out, vkr_buffer *a,
                              vkr_buffer *b) {
    const char *op = "concat_forward";
    vkr_status s = check(op, n, ca, cb, hw);
    if (s) return s;
    uint64_t pa = (uint64_t)ca * hw, pb = (uint64_t)cb * hw, po = pa + pb;
    if ((s = vkr__need(op, "out", out, n * po)) || (s = vkr__need(op, "a", a, n * pa)) ||
        (s = vkr__need(op, "b", b, n * pb)))
        return s;
    if ((s = copy_blocks(cmd, (uint64_t)n, out, po, 0, a, pa, 0, pa))) return s;
    return copy_blocks(cmd, (uint64_t)n, out, po, pa, b, pb, 0, pb);
}

vkr_status vkr_concat_backward(vkr_cmd *cmd, int n, int ca, int cb, int hw, vkr_buffer *da, vkr_buffer *db,
                               vkr_buffer *dout) {
    const char *op = "concat_backward";
    vkr_status s = check(op, n, ca, cb, hw);
    if (s) return s;
    uint64_t pa = (uint64_t)ca * hw, pb = (uint64_t)cb * hw, po = pa + pb;
    if ((da && (s = vkr__need(op, "da", da, n * pa))) || (db && (s = vkr__need(op, "db", db, n * pb))) ||
        ((da || db) && (s = vkr__need(op, "dout", dout, n * po))))
        return s;
    if (da && (s = copy_blocks(cmd, (uint64_t)n, da, pa, 0, dout, po, 0, pa))) return s;
    if (db && (s = copy_blocks(cmd, (uint64_t)n, db, pb, 0, dout, po, pa, pb))) return s;
    return VKR_OK;
}
