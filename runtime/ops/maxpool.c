/* Max pooling: shaders/maxpool_forward.comp saves the int32 argmax (h*W+w in
 * the input plane; first maximum in row-major window order wins, padding
 * never wins); shaders/maxpool_backward.comp gathers, for each input
 * position, dout over the windows whose argmax it is (no atomics, deterministic). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

vkr_status vkr_maxpool_forward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *out, vkr_buffer *argmax,
                               vkr_buffer *inp) {
    const char *op = "maxpool_forward";
    vkr_status s = vkr__pool_check(op, p);
    if (s) return s;
    uint64_t planes = (uint64_t)p->n * p->c;
    uint64_t ip = (uint64_t)p->h * p->w, op_ = (uint64_t)vkr_pool_out_h(p) * vkr_pool_out_w(p);
    if ((s = vkr__need(op, "out", out, planes * op_)) || (s = vkr__need(op, "argmax", argmax, planes * op_)) ||
        (s = vkr__need(op, "inp", inp, planes * ip)))
        return s;
    vkr_buffer *bufs[3] = {out, argmax, inp};
    uint64_t sizes[3] = {op_, op_, ip};
    return vkr__pool_record(cmd, op, (vkr_pipeline_desc){VKR_SHADER(maxpool_forward)}, p, bufs, sizes, 0x3, op_);
}

vkr_status vkr_maxpool_backward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *dinp, vkr_buffer *dout,
                                vkr_buffer *argmax) {
    const char *op = "maxpool_backward";
    vkr_status s = vkr__pool_check(op, p);
    if (s || !dinp) return s;
    uint64_t planes = (uint64_t)p->n * p->c;
    uint64_t ip = (uint64_t)p->h * p->w, op_ = (uint64_t)vkr_pool_out_h(p) * vkr_pool_out_w(p);
    if ((s = vkr__need(op, "dinp", dinp, planes * ip)) || (s = vkr__need(op, "dout", dout, planes * op_)) ||
        (s = vkr__need(op, "argmax", argmax, planes * op_)))
        return s;
    vkr_buffer *bufs[3] = {dinp, dout, argmax};
    uint64_t sizes[3] = {ip, op_, op_};
    return vkr__pool_record(cmd, op, (vkr_pipeline_desc){VKR_SHADER(maxpool_backward)}, p, bufs, sizes, 0x1, ip);
}
