/* out = a + b and its backward (da = db = dout): shaders/add_forward.comp,
 * shaders/add_backward.comp (+ variant add_backward2 writing both gradients);
 * out = max(a + b, 0) (variant add_relu_forward, ResNet's residual add + ReLU).
 * Element-wise, chunked so that no binding exceeds maxStorageBufferRange. */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#include <string.h>

VKR_PUSH_CHECK(uint32_t, add_forward);
VKR_PUSH_CHECK(uint32_t, add_relu_forward);
VKR_PUSH_CHECK(uint32_t, add_backward);
VKR_PUSH_CHECK(uint32_t, add_backward2);

static vkr_status run(vkr_cmd *cmd, vkr_pipeline_desc d, uint32_t writes, uint64_t n, vkr_buffer **bufs) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_status s = vkr_pipeline_get(ctx, &d, &p);
    if (s) return s;
    uint32_t pc = 0;
    return vkr__dispatch_chunked(cmd, p, bufs, (uint32_t)strlen(d.bindings), writes, n, vkr__elem_chunk_floats(ctx), &pc);
}

/* out = a + b (shader add_forward) or max(a + b, 0) (add_relu_forward), after the checks. */
static vkr_status forward(vkr_cmd *cmd, vkr_pipeline_desc d, uint64_t n, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b) {
    const char *op = d.shader;
    vkr_status s;
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "%s: n must be positive", op);
    if ((s = vkr__need(op, "out", out, n)) || (s = vkr__need(op, "a", a, n)) || (s = vkr__need(op, "b", b, n))) return s;
    vkr_buffer *bufs[3] = {out, a, b};
    return run(cmd, d, 0x1, n, bufs);
}

vkr_status vkr_add_forward(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b) {
    return forward(cmd, (vkr_pipeline_desc){VKR_SHADER(add_forward)}, n, out, a, b);
}

vkr_status vkr_add_relu_forward(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b) {
    return forward(cmd, (vkr_pipeline_desc){VKR_SHADER(add_relu_forward)}, n, out, a, b);
}

vkr_status vkr_add_backward(vkr_cmd *cmd, uint64_t n, vkr_buffer *da, vkr_buffer *db, vkr_buffer *dout) {
    vkr_status s;
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "add_backward: n must be positive");
    if (!da && !db) return VKR_OK;
    if ((da && (s = vkr__need("add_backward", "da", da, n))) || (db && (s = vkr__need("add_backward", "db", db, n))) ||
        (s = vkr__need("add_backward", "dout", dout, n)))
        return s;
    if (da && db && da != db) {
        vkr_buffer *bufs[3] = {da, db, dout};
        return run(cmd, (vkr_pipeline_desc){VKR_SHADER(add_backward2)}, 0x3, n, bufs);
    }
    vkr_buffer *bufs[2] = {da ? da : db, dout};
    if (bufs[0] == dout) return VKR_OK; /* in place: the gradient already is dout */
    return run(cmd, (vkr_pipeline_desc){VKR_SHADER(add_backward)}, 0x1, n, bufs);
}
