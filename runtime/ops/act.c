/* Element-wise activations (clip, sigmoid, hard_sigmoid, hard_swish, swish): one shader pair,
 * shaders/act_forward.comp / act_backward.comp, the function chosen by a push-constant mode.
 * Chunked so that no binding exceeds maxStorageBufferRange. */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#include <math.h>
#include <string.h>

typedef struct {
    uint32_t n, mode;
    float a, b;
} act_push;
VKR_PUSH_CHECK(act_push, act_forward);
VKR_PUSH_CHECK(act_push, act_backward);

static const char *const k_names[] = {"clip", "sigmoid", "hard_sigmoid", "hard_swish", "swish"};

const char *vkr_act_name(vkr_act_mode m) { return (unsigned)m < VKR_ACT_MODE_COUNT ? k_names[m] : "?"; }

static vkr_status check(const char *op, const vkr_act_params *a, uint64_t n) {
    if (!a || (unsigned)a->mode >= VKR_ACT_MODE_COUNT)
        return vkr_fail(VKR_ERR_INVALID, "%s: unknown activation mode %d", op, a ? (int)a->mode : -1);
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "%s (%s): n must be positive", op, k_names[a->mode]);
    if (!isfinite(a->a) && a->mode == VKR_ACT_HARD_SIGMOID)
        return vkr_fail(VKR_ERR_INVALID, "%s (hard_sigmoid): alpha must be finite", op);
    if (a->mode == VKR_ACT_CLIP && !(a->a <= a->b))
        return vkr_fail(VKR_ERR_INVALID, "%s (clip): min %g must not exceed max %g", op, a->a, a->b);
    return VKR_OK;
}

static vkr_status run(vkr_cmd *cmd, vkr_pipeline_desc d, const vkr_act_params *a, uint64_t n, vkr_buffer **bufs) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_status s = vkr_pipeline_get(ctx, &d, &p);
    if (s) return s;
    act_push pc = {0, (uint32_t)a->mode, a->a, a->b};
    return vkr__dispatch_chunked(cmd, p, bufs, (uint32_t)strlen(d.bindings), 0x1, n, vkr__elem_chunk_floats(ctx), &pc);
}

vkr_status vkr_act_forward(vkr_cmd *cmd, const vkr_act_params *a, uint64_t n, vkr_buffer *out, vkr_buffer *inp) {
    vkr_status s;
    if ((s = check("act_forward", a, n)) || (s = vkr__need("act_forward", "out", out, n)) ||
        (s = vkr__need("act_forward", "inp", inp, n)))
        return s;
    vkr_buffer *b[2] = {out, inp};
    return run(cmd, (vkr_pipeline_desc){VKR_SHADER(act_forward)}, a, n, b);
}

vkr_status vkr_act_backward(vkr_cmd *cmd, const vkr_act_params *a, uint64_t n, vkr_buffer *dinp, vkr_buffer *dout,
                            vkr_buffer *inp) {
    vkr_status s;
    if ((s = check("act_backward", a, n))) return s;
    if (!dinp) return VKR_OK; /* nothing requested */
    if ((s = vkr__need("act_backward", "dinp", dinp, n)) || (s = vkr__need("act_backward", "dout", dout, n)) ||
        (s = vkr__need("act_backward", "inp", inp, n)))
        return s;
    vkr_buffer *b[3] = {dinp, dout, inp};
    return run(cmd, (vkr_pipeline_desc){VKR_SHADER(act_backward)}, a, n, b);
}
