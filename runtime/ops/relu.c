/* ReLU forward / backward: shaders/relu_forward.comp, shaders/relu_backward.comp.
 * Element-wise, chunked so that no binding exceeds maxStorageBufferRange. */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#include <string.h>

VKR_PUSH_CHECK(uint32_t, relu_forward);
VKR_PUSH_CHECK(uint32_t, relu_backward);

/* Records shader d over n floats of its buffers (binding 0 written), chunk by chunk. */
static vkr_status elementwise(vkr_cmd *cmd, vkr_pipeline_desc d, uint64_t n, vkr_buffer **bufs) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_status s = vkr_pipeline_get(ctx, &d, &p);
    if (s) return s;
    uint32_t pc = 0;
    return vkr__dispatch_chunked(cmd, p, bufs, (uint32_t)strlen(d.bindings), 0x1, n, vkr__elem_chunk_floats(ctx), &pc);
}

vkr_status vkr_relu_forward(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *inp) {
    vkr_status s;
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "relu_forward: n must be positive");
    if ((s = vkr__need("relu_forward", "out", out, n)) || (s = vkr__need("relu_forward", "inp", inp, n))) return s;
    vkr_buffer *b[2] = {out, inp};
    return elementwise(cmd, (vkr_pipeline_desc){VKR_SHADER(relu_forward)}, n, b);
}

vkr_status vkr_relu_backward(vkr_cmd *cmd, uint64_t n, vkr_buffer *dinp, vkr_buffer *dout, vkr_buffer *out) {
    vkr_status s;
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "relu_backward: n must be positive");
    if (!dinp) return VKR_OK; /* nothing requested */
    if ((s = vkr__need("relu_backward", "dinp", dinp, n)) || (s = vkr__need("relu_backward", "dout", dout, n)) ||
        (s = vkr__need("relu_backward", "out", out, n)))
        return s;
    vkr_buffer *b[3] = {dinp, dout, out};
    return elementwise(cmd, (vkr_pipeline_desc){VKR_SHADER(relu_backward)}, n, b);
}
