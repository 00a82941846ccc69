/* Dynamic loss scaling of a training step (vkr_graph_opts.loss_scaling; the fp16 path):
 * the loss gradient is multiplied by the scale S (graph_exec.c, record_loss), the call runs
 * forward + backward (micro-batches accumulating as usual), then one submission checks every
 * trained gradient for inf / NaN into one flag (vkr_nonfinite) and the flag is read back:
 *   any  -> the update is skipped (the optimizer's step counter too), S *= 0.5, the clean run ends;
 *   none -> the gradients are divided by S and the optimizer update applied in one submission;
 *           after `interval` clean steps in a row S *= 2.
 * This is GradScaler's update rule (backoff 0.5, growth 2, growth_interval 2000) and Keras's
 * LossScaleOptimizer's (dynamic_growth_steps 2000); the initial scale is Keras's 2^15. */
#include "graph/graph_internal.h"

#include <math.h>

#define LS_BACKOFF 0.5
#define LS_GROWTH 2.0
#define LS_INTERVAL 2000

void vkr_graph_loss_scale(const vkr_graph *g, vkr_loss_scale_state *out) {
    out->scale = g->o.loss_scaling ? g->ls_scale : 1.0;
    out->skipped = g->ls_skipped;
    out->clean = g->ls_clean;
}

static vkr_status fresh_cmd(vkr_graph *g) {
    vkr_status s = g->cmd_fresh ? VKR_OK : vkr_cmd_reset(g->cmd);
    g->cmd_fresh = 0;
    return s;
}

/* *bad = 1 if a trained gradient holds inf or NaN. */
static vkr_status check_grads(vkr_graph *g, int *bad) {
    vkr_status s = VKR_OK;
    if (!g->ls_flag && (s = vkr_buffer_create(g->ctx, 4, &g->ls_flag))) return s;
    if ((s = fresh_cmd(g))) return s;
    vkr_cmd_label(g->cmd, "loss scaling: gradient check");
    s = vkr_cmd_fill_zero(g->cmd, g->ls_flag, 0, 4);
    for (int j = 0; j < g->nlayers && !s; j++)
        for (int k = 0; k < VKR_MAX_PARAMS && !s && g->trained[j]; k++)
            if (g->grad[j][k]) s = vkr_nonfinite(g->cmd, vkr_model_param(g->m, j, k)->count, g->grad[j][k], g->ls_flag);
    if (!s) s = vkr_cmd_submit(g->cmd);
    uint32_t flag = 1;
    if (!s) s = vkr_buffer_download(g->ls_flag, 0, &flag, 4);
    *bad = flag != 0;
    return s;
}

/* grad /= S for every trained gradient, then the optimizer update. */
static vkr_status unscale_and_update(vkr_graph *g) {
    vkr_status s = fresh_cmd(g);
    float inv = (float)(1.0 / g->ls_scale); /* S is a power of two: exact */
    for (int j = 0; j < g->nlayers && !s; j++)
        for (int k = 0; k < VKR_MAX_PARAMS && !s && g->trained[j]; k++)
            if (g->grad[j][k])
                s = vkr_axpby(g->cmd, vkr_model_param(g->m, j, k)->count, 0.0f, g->grad[j][k], inv, g->grad[j][k]);
    uint32_t step0 = g->step;
    if (!s) s = vkr__graph_record_updates(g);
    if (!s) s = vkr_cmd_submit(g->cmd);
    if (s) g->step = step0; /* the update was not applied */
    return s;
}

vkr_status vkr__graph_scaled_step(vkr_graph *g, vkr__call_fn grads, const float *input, const float *targets, int n,
                                  float *loss, int *correct) {
    if (!(g->ls_scale > 0) || !isfinite(g->ls_scale) || g->o.loss_scale_interval < 0)
        return vkr_fail(VKR_ERR_INVALID, "loss scaling: scale %g and growth interval %d (need a finite scale > 0, "
                        "interval >= 0)", g->ls_scale, g->o.loss_scale_interval);
    vkr_status s = grads(g, input, targets, n, loss, correct);
    int bad = 1;
    if (!s) s = check_grads(g, &bad);
    if (s) return s;
    if (bad) {
        g->ls_scale *= LS_BACKOFF;
        g->ls_clean = 0;
        g->ls_skipped++;
        return VKR_OK;
    }
    if ((s = unscale_and_update(g))) return s;
    int interval = g->o.loss_scale_interval > 0 ? g->o.loss_scale_interval : LS_INTERVAL;
    if (++g->ls_clean >= interval) {
        g->ls_scale *= LS_GROWTH;
        g->ls_clean = 0;
    }
    return VKR_OK;
}
