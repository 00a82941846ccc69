/* Average pooling: shaders/avgpool_forward.comp, shaders/avgpool_backward.comp
 * (gather over the windows covering each input position, no atomics).
 * count_include_pad = 1 divides by kh*kw (torch default), 0 by the number of
 * valid input positions in the window (Keras 'same'). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

vkr_status vkr_avgpool_forward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *out, vkr_buffer *inp) {
    const char *op = "avgpool_forward";
    vkr_status s = vkr__pool_check(op, p);
    if (s) return s;
    uint64_t planes = (uint64_t)p->n * p->c;
    uint64_t ip = (uint64_t)p->h * p->w, op_ = (uint64_t)vkr_pool_out_h(p) * vkr_pool_out_w(p);
    if ((s = vkr__need(op, "out", out, planes * op_)) || (s = vkr__need(op, "inp", inp, planes * ip))) return s;
    vkr_buffer *bufs[2] = {out, inp};
    uint64_t sizes[2] = {op_, ip};
    return vkr__pool_record(cmd, op, (vkr_pipeline_desc){VKR_SHADER(avgpool_forward)}, p, bufs, sizes, 0x1, op_);
}

vkr_status vkr_avgpool_backward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *dinp, vkr_buffer *dout) {
    const char *op = "avgpool_backward";
    vkr_status s = vkr__pool_check(op, p);
    if (s || !dinp) return s;
    uint64_t planes = (uint64_t)p->n * p->c;
    uint64_t ip = (uint64_t)p->h * p->w, op_ = (uint64_t)vkr_pool_out_h(p) * vkr_pool_out_w(p);
    if ((s = vkr__need(op, "dinp", dinp, planes * ip)) || (s = vkr__need(op, "dout", dout, planes * op_))) return s;
    vkr_buffer *bufs[2] = {dinp, dout};
    uint64_t sizes[2] = {ip, op_};
    return vkr__pool_record(cmd, op, (vkr_pipeline_desc){VKR_SHADER(avgpool_backward)}, p, bufs, sizes, 0x1, ip);
}
