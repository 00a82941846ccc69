/* Keras Adam (coupled L2, decoupled weight decay) as shaders/adam.comp, over
 * element chunks so tensors larger than maxStorageBufferRange work.  The bias
 * correction lr_t is computed here in double. */
#include "op_util.h"
#include "vkr_shader_ids.h"

#include <math.h>

uint64_t vkr__loss_chunk_floats(const vkr_context *ctx); /* softmax.c */

typedef struct { uint32_t n; float lr_t, b1, b2, eps, l2, lr_wd; } adam_push;
VKR_PUSH_CHECK(adam_push, adam);

vkr_status vkr_adam_step(vkr_cmd *cmd, uint64_t n, const vkr_optim_params *o, vkr_buffer *param, vkr_buffer *grad,
                         vkr_buffer *m, vkr_buffer *v) {
    static const char *op = "adam_step";
    vkr_status s;
    if (!cmd || !o) return vkr_fail(VKR_ERR_INVALID, "%s: cmd and params must not be NULL", op);
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "%s: n must be positive", op);
    if (o->step < 1) return vkr_fail(VKR_ERR_INVALID, "%s: step is 1-based (got 0)", op);
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f) || !(o->beta2 >= 0.0f && o->beta2 < 1.0f))
        return vkr_fail(VKR_ERR_INVALID, "%s: beta1 (%g) and beta2 (%g) must lie in [0, 1)", op, (double)o->beta1,
                        (double)o->beta2);
    if (!isfinite(o->lr) || !isfinite(o->eps) || !isfinite(o->l2) || !isfinite(o->weight_decay))
        return vkr_fail(VKR_ERR_INVALID, "%s: lr, eps, l2 and weight_decay must be finite", op);
    if ((s = vkr__need(op, "param", param, n)) || (s = vkr__need(op, "grad", grad, n)) ||
        (s = vkr__need(op, "m", m, n)) || (s = vkr__need(op, "v", v, n)))
        return s;
    double t = (double)o->step;
    double lr_t = (double)o->lr * sqrt(1.0 - pow((double)o->beta2, t)) / (1.0 - pow((double)o->beta1, t));
    if (!isfinite(lr_t)) return vkr_fail(VKR_ERR_INVALID, "%s: bias-corrected learning rate is not finite", op);
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline_desc d = {VKR_SHADER(adam)};
    vkr_pipeline *p;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    adam_push pc = {
        0, (float)lr_t, o->beta1, o->beta2, o->eps, o->l2, (float)((double)o->lr * (double)o->weight_decay)};
    vkr_buffer *bufs[4] = {param, grad, m, v};
    return vkr__dispatch_chunked(cmd, p, bufs, 4, 0xD, n, vkr__loss_chunk_floats(ctx), &pc);
}
