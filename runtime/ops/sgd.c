/* Keras SGD (momentum, nesterov, coupled L2, decoupled weight decay) as
 * shaders/sgd.comp (sgd_plain without a velocity), over element chunks so
 * tensors larger than maxStorageBufferRange work. */
#include "op_util.h"

#include <math.h>

uint64_t vkr__loss_chunk_floats(const vkr_context *ctx); /* softmax.c */

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
    vkr_pipeline_desc d = {.shader = velocity ? "sgd" : "sgd_plain", .bindings = velocity ? "sss" : "ss",
                           .push_size = 24};
    vkr_pipeline *p;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    uint64_t chunk = vkr__loss_chunk_floats(ctx);
    for (uint64_t first = 0; first < n; first += chunk) {
        uint64_t cnt = n - first < chunk ? n - first : chunk;
        struct { uint32_t n; float lr, momentum, l2, lr_wd; uint32_t nesterov; } pc = {
            (uint32_t)cnt, o->lr, o->momentum, o->l2, (float)((double)o->lr * (double)o->weight_decay),
            o->nesterov ? 1u : 0u};
        vkr_binding bind[3] = {vkr__range(param, first, cnt), vkr__range(grad, first, cnt),
                               velocity ? vkr__range(velocity, first, cnt) : vkr__whole(param)};
        uint32_t gx, gy;
        vkr_grid_1d(cnt, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, p, bind, velocity ? 3 : 2, velocity ? 0x5 : 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}
