/* Zero padding (forward) and its backward (a crop): shaders/zeropad_forward.comp,
 * shaders/zeropad_backward.comp.  Work is split over channel planes when a
 * tensor exceeds maxStorageBufferRange. */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#define PAD_MAX_DIM (1 << 24)

static vkr_status check_shape(const char *op, const vkr_pad_shape *p) {
    if (!p) return vkr_fail(VKR_ERR_INVALID, "%s: shape is NULL", op);
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: n, c, h, w must be positive (got %d, %d, %d, %d)", op, p->n, p->c, p->h,
                        p->w);
    if (p->pad_t < 0 || p->pad_b < 0 || p->pad_l < 0 || p->pad_r < 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: padding must be non-negative (got t%d b%d l%d r%d)", op, p->pad_t,
                        p->pad_b, p->pad_l, p->pad_r);
    if (p->h > PAD_MAX_DIM || p->w > PAD_MAX_DIM || p->pad_t > PAD_MAX_DIM || p->pad_b > PAD_MAX_DIM ||
        p->pad_l > PAD_MAX_DIM || p->pad_r > PAD_MAX_DIM)
        return vkr_fail(VKR_ERR_INVALID, "%s: spatial size or padding over %d", op, PAD_MAX_DIM);
    return VKR_OK;
}

typedef struct {
    uint32_t total;            /* planes * (plane of the indexed tensor) in this dispatch */
    uint32_t h, w, oh, ow;
    uint32_t pad_t, pad_l;
    uint32_t base_dst, base_src;
} pad_push;
VKR_PUSH_CHECK(pad_push, zeropad_forward);
VKR_PUSH_CHECK(pad_push, zeropad_backward);

/* forward = 1: dst = out (oh*ow per plane), src = inp; else dst = dinp (h*w), src = dout. */
static vkr_status record(vkr_cmd *cmd, const vkr_pad_shape *p, vkr_buffer *dst, vkr_buffer *src, int forward) {
    const char *op = forward ? "zeropad_forward" : "zeropad_backward";
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t oh = (uint64_t)p->h + p->pad_t + p->pad_b, ow = (uint64_t)p->w + p->pad_l + p->pad_r;
    uint64_t in_plane = (uint64_t)p->h * p->w, out_plane = oh * ow;
    uint64_t planes = (uint64_t)p->n * p->c;
    uint64_t dst_plane = forward ? out_plane : in_plane, src_plane = forward ? in_plane : out_plane;
    vkr_status s;
    if ((s = vkr__need(op, forward ? "out" : "dinp", dst, planes * dst_plane)) ||
        (s = vkr__need(op, forward ? "inp" : "dout", src, planes * src_plane)))
        return s;
    uint64_t sizes[2] = {dst_plane, src_plane};
    uint64_t per = vkr__planes_per_dispatch(ctx, sizes, 2);
    if (!per)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: one %llux%llu image plane exceeds maxStorageBufferRange", op,
                        (unsigned long long)oh, (unsigned long long)ow);
    vkr_pipeline *pipe;
    vkr_pipeline_desc d = forward ? (vkr_pipeline_desc){VKR_SHADER(zeropad_forward)}
                                : (vkr_pipeline_desc){VKR_SHADER(zeropad_backward)};
    if ((s = vkr_pipeline_get(ctx, &d, &pipe))) return s;
    for (uint64_t p0 = 0; p0 < planes; p0 += per) {
        uint64_t np = planes - p0 < per ? planes - p0 : per;
        pad_push pc = {(uint32_t)(np * dst_plane), (uint32_t)p->h, (uint32_t)p->w, (uint32_t)oh, (uint32_t)ow,
                       (uint32_t)p->pad_t, (uint32_t)p->pad_l, 0, 0};
        vkr_binding bind[2] = {vkr__planes_binding(ctx, dst, dst_plane, p0, np, &pc.base_dst),
                               vkr__planes_binding(ctx, src, src_plane, p0, np, &pc.base_src)};
        uint32_t gx, gy;
        vkr_grid_1d(pc.total, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, pipe, bind, 2, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

vkr_status vkr_zeropad_forward(vkr_cmd *cmd, const vkr_pad_shape *p, vkr_buffer *out, vkr_buffer *inp) {
    vkr_status s = check_shape("zeropad_forward", p);
    return s ? s : record(cmd, p, out, inp, 1);
}

vkr_status vkr_zeropad_backward(vkr_cmd *cmd, const vkr_pad_shape *p, vkr_buffer *dinp, vkr_buffer *dout) {
    vkr_status s = check_shape("zeropad_backward", p);
    if (s || !dinp) return s;
    return record(cmd, p, dinp, dout, 0);
}
