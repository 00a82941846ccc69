/* Keras SGD (momentum, nesterov, coupled L2, decoupled weight decay) as
 * shaders/sgd.comp (sgd_plain without a velocity), over element chunks so
 * tensors larger than maxStorageBufferRange work. */
#include "op_util.h"
#include "vkr_shader_ids.h"

#include <math.h>

uint64_t vkr__loss_chunk_floats(const vkr_context *ctx); /* softmax.c */

typedef struct { uint32_t n; float lr, momentum, l2, lr_wd; uint32_t nesterov; } sgd_push;
VKR_PUSH_CHECK(sgd_push, sgd);
VKR_PUSH_CHECK(sgd_push, sgd_plain);

vkr_status vkr_sgd_step(vkr_cmd *cmd, uint64_t n, const vkr_optim_params *o, vkr_buffer *param, vkr_buffer *grad,
                        vkr_buffer *velocity) {
    static const char *op = "sgd_step";
    vkr_status s;
    if (!cmd || !o) return vkr_fail(VKR_ERR_INVALID, "%s: cmd and params must not be NULL", op);
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "%s: n must be positive", op);
    if (!isfinite(o->lr) || !isfinite(o->momentum) || !isfinite(o->l2) || !isfinite(o->weight_decay))
        return vkr_fail(VKR_ERR_INVALID, "%s: lr, momentum, l2 and weight_decay must be finite", op);
    if (o->momentum != 0.0f && !velocity)
        return vkr_fail(VKR_ERR_INVALID, "%s: momentum %g needs a velocity buffer", op, (double)o->momentum);
    if ((s = vkr__need(op, "param", param, n)) || (s = vkr__need(op, "grad", grad, n)) ||
        (velocity && (s = vkr__need(op, "velocity", velocity, n))))
        return s;
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline_desc d = velocity ? (vkr_pipeline_desc){VKR_SHADER(sgd)} : (vkr_pipeline_desc){VKR_SHADER(sgd_plain)};
    vkr_pipeline *p;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    sgd_push pc = {
        0, o->lr, o->momentum, o->l2, (float)((double)o->lr * (double)o->weight_decay), o->nesterov ? 1u : 0u};
    vkr_buffer *bufs[3] = {param, grad, velocity};
    return vkr__dispatch_chunked(cmd, p, bufs, velocity ? 3 : 2, velocity ? 0x5 : 0x1, n, vkr__loss_chunk_floats(ctx),
                                 &pc);
}
